"""`vaegen serve`'s JSON API on the shipped model of whole ci: every endpoint, every bound, the headers."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

pytest.importorskip("fastapi")
from fastapi import HTTPException
from fastapi.testclient import TestClient

import vaegen
from vaegen.core import checkpoint
from vaegen.core.config import SAMPLING_TEMPERATURE, SAMPLING_TOP_P
from vaegen.core.errors import VaegenError
from vaegen.generate.decoding import GREEDY, Strategy
from vaegen.generate.landscape import build, fingerprint
from vaegen.serve import landscape as maps
from vaegen.serve import schemas
from vaegen.serve.app import create_app
from vaegen.serve.gate import ModelGate
from vaegen.serve.service import Service
from vaegen.serve.settings import Settings
from vaegen.songci.forms import form_of

CI_A = "一曲新词酒一杯。去年天气旧亭台。夕阳西下几时回。无可奈何花落去，似曾相识燕归来。小园香径独徘徊。"
CI_B = "青杏园林著酒香。佳人初试薄罗裳。柳丝无力燕飞忙。乍雨乍晴花自落，闲愁闲闷日偏长。为谁消瘦减容光。"


@pytest.fixture(scope="module")
def service() -> Service:
    model = vaegen.load(checkpoint.BUNDLED_TUNES, "cpu")
    return Service(model, maps.ServedMap.ready(build(model, None, 40)), "songci-ci.pt")


@pytest.fixture(scope="module")
def client(service: Service) -> Iterator[TestClient]:
    with TestClient(create_app(service)) as test_client:
        yield test_client


def ok(client: TestClient, path: str, body: dict) -> list[dict]:
    response = client.post(path, json=body)
    assert response.status_code == 200, response.text
    return response.json()["results"]


def test_health_map_tunes_and_schema(client: TestClient) -> None:
    health = client.get("/api/health").json()
    assert health == {"status": "ok", "model": "songci-ci.pt", "latent_dim": 32, "max_length": 160, "tunes": True,
                      "map_source": "prior", "map_points": 40}
    view = client.get("/api/map").json()
    assert len(view["points"]) == 40 and view["source"] == "prior" and view["explained"][0] >= view["explained"][1] > 0
    tunes = client.get("/api/tunes").json()["tunes"]
    assert tunes[0]["name"] == "浣溪沙" and tunes[0]["forms"][0]["form"] == "7。7。7。7，7。7。"
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/api/sample", "/api/encode", "/api/decode", "/api/reconstruct", "/api/interpolate", "/api/near",
            "/api/complete", "/api/tunes", "/api/map"} <= set(paths)


def test_every_action_answers_sentences_placed_on_the_map(client: TestClient) -> None:
    form = "7。7。7。7，7。7。"
    written = ok(client, "/api/sample", {"n": 2, "tune": "浣溪沙", "form": form, "seed": 0})
    assert [form_of(r["text"]) for r in written] == [form, form] and written[0]["form"] == form
    encoded = ok(client, "/api/encode", {"texts": [CI_A], "tune": "浣溪沙"})
    rebuilt = ok(client, "/api/reconstruct", {"texts": [CI_A], "tune": "浣溪沙"})[0]
    assert (rebuilt["x"], rebuilt["y"]) == pytest.approx((encoded[0]["x"], encoded[0]["y"]))
    assert form_of(rebuilt["reconstruction"]) == form and len(rebuilt["neighbours"]) == 5
    distances = [n["distance"] for n in rebuilt["neighbours"]]
    assert distances == sorted(distances)
    path = ok(client, "/api/interpolate", {"a": CI_A, "b": CI_B, "steps": 4, "tune": "浣溪沙"})
    assert len(path) == 4 and (path[0]["x"], path[0]["y"]) == pytest.approx((encoded[0]["x"], encoded[0]["y"]), abs=1e-4)
    around = ok(client, "/api/near", {"text": CI_A, "n": 3, "radius": 0.3, "tune": "浣溪沙", "seed": 1})
    assert len(around) == 3
    completed = ok(client, "/api/complete", {"prefix": "一曲", "n": 2, "tune": "浣溪沙", "seed": 0})
    assert all(r["text"].startswith("一曲") for r in completed)
    decoded = ok(client, "/api/decode", {"points": [[0.5, -0.25]], "tune": "浣溪沙"})[0]
    assert (decoded["x"], decoded["y"]) == pytest.approx((0.5, -0.25), abs=1e-4)  # a point decodes where it was asked


@pytest.mark.parametrize("path, body, status, fragment", [
    ("/api/encode", {"texts": ["字" * (schemas.MAX_TEXT_CHARS + 1)]}, 422, "at most 400 characters"),
    ("/api/sample", {"n": schemas.MAX_N + 1}, 422, "less than or equal to 50"),
    ("/api/sample", {"n": 1, "tune": "no such tune"}, 400, "no such tune"),
    ("/api/interpolate", {"a": "一", "b": "二", "steps": schemas.MAX_PATH_POINTS + 1}, 422, "less than or equal to 20"),
    ("/api/near", {"text": "一", "radius": 10}, 422, "less than or equal to 3"),
    ("/api/decode", {"points": [[1e9, 0]]}, 422, "less than or equal to 1000"),
    ("/api/sample", {"n": 1, "strategy": {"kind": "beam", "beam": 99}}, 422, "less than or equal to 16"),
    ("/api/sample", {"n": 1, "file": "/etc/passwd"}, 422, "Extra inputs are not permitted"),
    ("/api/sample", {"n": 1, "form": "not a form"}, 400, "form"),
])
def test_a_request_past_a_bound_is_refused_with_a_message_and_the_server_stays_healthy(
        client: TestClient, path: str, body: dict, status: int, fragment: str) -> None:
    response = client.post(path, json=body)
    assert response.status_code == status and fragment in str(response.json()["detail"]), response.text
    assert client.get("/api/health").status_code == 200


def test_an_oversized_body_is_refused_before_it_is_read(client: TestClient) -> None:
    response = client.post("/api/encode", content=b"{" + b" " * 70_000 + b"}", headers={"content-type": "application/json"})
    assert response.status_code == 413 and "over" in response.json()["detail"]


def test_the_page_and_every_answer_carry_the_security_headers(client: TestClient) -> None:
    for response in (client.get("/"), client.get("/api/health"), client.post("/api/sample", json={"n": 999})):
        policy = response.headers["content-security-policy"]
        assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
        assert response.headers["x-content-type-options"] == "nosniff"
    assert "<svg" in client.get("/").text or "map" in client.get("/").text


def test_the_map_is_cached_by_model_and_corpus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VAEGEN_CACHE_DIR", str(tmp_path))
    model, digest = vaegen.load(checkpoint.BUNDLED, "cpu"), fingerprint(checkpoint.BUNDLED)
    corpus = tmp_path / "lines.txt"
    corpus.write_text("明月几时有，把酒问青天。\n杨柳岸、晓风残月。\n寻寻觅觅，冷冷清清，凄凄惨惨戚戚。\n", encoding="utf-8")
    first, was_cached = maps.cached_map(model, digest, corpus, 100)
    again, now_cached = maps.cached_map(model, digest, corpus, 100)
    assert not was_cached and now_cached and again.texts == first.texts and torch.equal(again.codes, first.codes)
    corpus.write_text("明月几时有，把酒问青天。\n杨柳岸、晓风残月。\n", encoding="utf-8")
    assert not maps.cached_map(model, digest, corpus, 100)[1]  # another corpus: another map
    points = first.points()
    assert torch.allclose(first.project(first.lift(points)), points, atol=1e-5)  # a map point lifts and falls back


def test_the_gate_refuses_past_its_depth_and_drops_what_waits_too_long() -> None:
    import threading

    async def scenario() -> list[object]:
        gate, release = ModelGate(depth=2, timeout=0.5), threading.Event()
        slow = asyncio.ensure_future(gate.run(lambda: release.wait(5) and "slow"))
        await asyncio.sleep(0.05)
        queued = asyncio.ensure_future(gate.run(lambda: "queued"))
        await asyncio.sleep(0.05)
        outcomes: list[object] = []
        for call in (gate.run(lambda: "third"), queued):  # the third is past the depth; the queued one times out
            try:
                outcomes.append(await call)
            except HTTPException as refused:
                outcomes.append((refused.status_code, refused.detail))
        release.set()
        outcomes.append(await asyncio.wait_for(slow, 5) if not slow.done() else slow.exception() or slow.result())
        outcomes.append(await gate.run(lambda: "after"))  # the gate serves again
        gate.close()
        return outcomes

    third, queued, _, after = asyncio.run(scenario())
    assert third[0] == 503 and "busy" in third[1]  # type: ignore[index]
    assert queued[0] == 503 and "did not answer" in queued[1]  # type: ignore[index]
    assert after == "after"


def test_serve_refuses_a_missing_corpus_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from vaegen.cli import run

    assert run(["serve", "--corpus", str(tmp_path / "missing.txt")]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "missing.txt does not exist" in err[0] and "Traceback" not in err[0]


def test_each_action_decodes_by_default_as_the_command_line_does() -> None:
    defaults = {request.__name__: request.model_fields["strategy"].default.to_strategy() for request in (
        schemas.SampleRequest, schemas.NearRequest, schemas.CompleteRequest, schemas.ReconstructRequest,
        schemas.InterpolateRequest, schemas.DecodeRequest)}
    sampling = Strategy(temperature=SAMPLING_TEMPERATURE, top_p=SAMPLING_TOP_P)
    assert defaults == {"SampleRequest": sampling, "NearRequest": sampling, "CompleteRequest": sampling,
                        "ReconstructRequest": GREEDY, "InterpolateRequest": GREEDY, "DecodeRequest": GREEDY}


def test_the_lifespan_opens_the_gate_and_closes_it_on_shutdown(service: Service) -> None:
    app = create_app(service)
    with TestClient(app) as client:
        gate = app.state.gate
        assert not gate.closed and len(ok(client, "/api/sample", {"n": 1, "seed": 0})) == 1
    assert gate.closed
    with pytest.raises(HTTPException) as refused:  # a closed gate takes no more work
        asyncio.run(gate.run(lambda: "after"))
    assert refused.value.status_code == 503 and "shutting down" in refused.value.detail


def test_the_factory_loads_what_the_environment_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    corpus = tmp_path / "lines.txt"
    corpus.write_text("明月几时有，把酒问青天。\n杨柳岸、晓风残月。\n寻寻觅觅，冷冷清清，凄凄惨惨戚戚。\n", encoding="utf-8")
    for name, value in {"VAEGEN_CACHE_DIR": str(tmp_path), "VAEGEN_CHECKPOINT": str(checkpoint.BUNDLED),
                        "VAEGEN_DEVICE": "cpu", "VAEGEN_MAP_CORPUS": str(corpus), "VAEGEN_MAP_POINTS": "10",
                        "VAEGEN_SERVE_URL": "http://127.0.0.1:9"}.items():
        monkeypatch.setenv(name, value)
    app = create_app()  # as uvicorn calls it
    building, ready, url = capsys.readouterr().err.splitlines()
    assert building.startswith("map: building it from 3 corpus sentences in the background")
    assert ready.startswith("ready in ") and url == "http://127.0.0.1:9"
    with TestClient(app) as client:
        health = client.get("/api/health").json()
        while (view := client.get("/api/map").json())["status"] == "building":
            time.sleep(0.05)
    assert view["status"] == "ready" and [len(view["points"]), view["total"]] == [3, 3]
    assert (health["model"], health["tunes"], health["map_source"], health["map_points"]) == (
        "songci-lines.pt", False, "corpus", 3)


def test_the_settings_are_read_and_checked() -> None:
    assert Settings.from_environment({}) == Settings()
    assert Settings.from_environment({"VAEGEN_DEVICE": "", "VAEGEN_MAP_POINTS": "200"}) == Settings(map_points=200)
    for points in ("many", "3", "-50", "5001"):
        with pytest.raises(VaegenError, match="VAEGEN_MAP_POINTS"):
            Settings.from_environment({"VAEGEN_MAP_POINTS": points})
    with pytest.raises(VaegenError, match="VAEGEN_MAP_CORPUS"):
        Settings.from_environment({"VAEGEN_MAP_CORPUS": "/no/such/corpus.txt"})


def test_serve_refuses_a_bad_checkpoint_in_one_line_from_the_factory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """uvicorn calls the factory, which fails to load the checkpoint: its error comes back to the command."""
    from vaegen.cli import run

    monkeypatch.delenv("VAEGEN_CHECKPOINT", raising=False)
    assert run(["serve", "--checkpoint", str(tmp_path / "missing.pt"), "--port", "9"]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "missing.pt" in err[0], err
    assert "VAEGEN_CHECKPOINT" not in os.environ and "VAEGEN_MAP_POINTS" not in os.environ  # the settings put back
