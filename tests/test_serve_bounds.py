"""What one request may cost the server: bounded by the model's own limits, refused when not a finite number,
stopped once the gate gives it up, and never holding the model against the requests behind it."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator

import pytest
import torch

pytest.importorskip("fastapi")
from fastapi import HTTPException
from fastapi.testclient import TestClient

import vaegen
from vaegen.core import checkpoint
from vaegen.core.errors import VaegenError
from vaegen.core.tokenizer import BOS_ID
from vaegen.generate import decoding
from vaegen.generate.landscape import Landscape
from vaegen.serve import schemas
from vaegen.serve.app import create_app
from vaegen.serve.gate import ModelGate
from vaegen.serve.landscape import ServedMap
from vaegen.serve.service import Service

TUNE = "浣溪沙"
LONGEST = "9。" * 16  # 160 steps: the shipped model of whole ci writes up to data.max_length = 160
STEP_SECONDS = 0.02  # each decoding step made this much slower, so that a costly call is costly on any machine


@pytest.fixture(scope="module")
def service() -> Service:
    """The shipped model of whole ci over a small map of random codes (no decoding to build it)."""
    model = vaegen.load(checkpoint.BUNDLED_TUNES, "cpu")
    codes = torch.randn(12, model.latent_dim, generator=torch.Generator().manual_seed(0))
    landscape = Landscape([str(i) for i in range(12)], None, codes, codes[:, :2], "prior")
    return Service(model, ServedMap.ready(landscape), "ci")


@pytest.fixture(scope="module")
def client(service: Service) -> Iterator[TestClient]:
    with TestClient(create_app(service)) as test_client:
        yield test_client


class Counter:
    def __init__(self) -> None:
        self.count = 0


def count_passes(network: torch.nn.Module, monkeypatch: pytest.MonkeyPatch) -> Counter:
    """Counts every pass of a network's encoder or decoder."""
    counter = Counter()

    def counting(run: Callable[..., object]) -> Callable[..., object]:
        def counted(*args: object) -> object:
            counter.count += 1
            return run(*args)
        return counted

    for name in ("encode", "decode"):
        monkeypatch.setattr(network, name, counting(getattr(network, name)))
    return counter


@pytest.fixture
def model_work(service: Service, monkeypatch: pytest.MonkeyPatch) -> Counter:
    return count_passes(service.model.model, monkeypatch)


@pytest.fixture
def steps(monkeypatch: pytest.MonkeyPatch) -> Counter:
    """Counts the decoding steps of greedy and sampled decodings, each made STEP_SECONDS slower."""
    counter, choose = Counter(), decoding.choose

    def slow(logits: torch.Tensor, strategy: decoding.Strategy, generator: torch.Generator | None) -> torch.Tensor:
        counter.count += 1
        time.sleep(STEP_SECONDS)
        return choose(logits, strategy, generator)

    monkeypatch.setattr(decoding, "choose", slow)
    return counter


def post_raw(client: TestClient, path: str, body: str) -> tuple[int, str]:
    response = client.post(path, content=body.encode(), headers={"content-type": "application/json"})
    return response.status_code, response.text


# The model's own bounds, before any model work


@pytest.mark.parametrize("path, body, fragment", [
    ("/api/sample", {"n": 50, "tune": TUNE, "form": "999。" * 10}, "form 999。999。"),
    ("/api/sample", {"n": 1, "tune": TUNE, "form": "999999999。"}, "1,000,000,000 characters"),  # never spelt out
    ("/api/decode", {"points": [[0, 0]], "tune": "莺啼序"}, "the tune's form"),  # its most common: 295 steps
    ("/api/reconstruct", {"texts": ["一。" * 100], "tune": TUNE}, "the text's own form"),
    ("/api/near", {"text": "一，" * 100, "tune": TUNE}, "the text's own form"),
    ("/api/decode", {"points": [[0, 0]], "tune": TUNE, "form": "161。"}, "162 characters"),
    ("/api/interpolate", {"a": "一", "b": "二", "tune": TUNE, "form": "100，100。"}, "202 characters"),
    ("/api/complete", {"prefix": "一", "tune": TUNE, "form": "200。"}, "201 characters"),
])
def test_a_form_longer_than_the_model_writes_is_refused_before_any_model_work(
        client: TestClient, model_work: Counter, path: str, body: dict, fragment: str) -> None:
    response = client.post(path, json=body)
    detail = response.json()["detail"]
    assert response.status_code == 400 and fragment in detail and "form" in detail, response.text
    assert "maximum length of 160" in detail and model_work.count == 0


def test_a_form_as_long_as_the_model_writes_is_served(client: TestClient) -> None:
    response = client.post("/api/decode", json={"points": [[0, 0]], "tune": TUNE, "form": LONGEST})
    assert response.status_code == 200 and len(response.json()["results"][0]["text"]) == 160


def test_a_prefix_that_leaves_no_room_is_refused_before_any_model_work(client: TestClient, model_work: Counter) -> None:
    response = client.post("/api/complete", json={"prefix": "一曲新词酒一杯。" * 40, "tune": TUNE})
    assert response.status_code == 400 and "does not fit the form" in response.json()["detail"]
    assert model_work.count == 0


def test_a_prefix_past_the_maximum_length_is_refused_before_any_model_work(monkeypatch: pytest.MonkeyPatch) -> None:
    model = vaegen.load(checkpoint.BUNDLED, "cpu")  # lines, no tunes: no form to hold the prefix
    passes = count_passes(model.model, monkeypatch)
    with pytest.raises(VaegenError, match="maximum length of 48"):
        model.complete("明月几时有，" * 20, 2, max_length=model.config.data.max_length)
    assert passes.count == 0


def test_a_text_longer_than_the_model_reads_is_read_truncated(service: Service, client: TestClient,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    lengths: list[int] = []
    network = service.model.model
    encode = network.encode

    def measured(tokens: torch.Tensor, *args: torch.Tensor) -> object:
        lengths.append(tokens.size(1))
        return encode(tokens, *args)

    monkeypatch.setattr(network, "encode", measured)
    response = client.post("/api/encode", json={"texts": ["字" * schemas.MAX_TEXT_CHARS], "tune": TUNE})
    assert response.status_code == 200 and lengths and max(lengths) <= service.max_length + 1


@pytest.mark.parametrize("path, body", [
    ("/api/sample", {"n": 5, "strategy": {"kind": "beam", "beam": 16}}),
    ("/api/decode", {"points": [[0, 0]] * 33, "strategy": {"kind": "beam", "beam": 2}}),
    ("/api/interpolate", {"a": "一", "b": "二", "steps": 20, "strategy": {"kind": "beam", "beam": 4}}),
    ("/api/reconstruct", {"texts": ["一"] * 16, "strategy": {"kind": "beam", "beam": 5}}),
    ("/api/near", {"text": "一", "n": 50, "strategy": {"kind": "beam", "beam": 2}}),
])
def test_a_beam_wider_than_the_budget_for_its_sentences_is_refused(client: TestClient, path: str, body: dict) -> None:
    response = client.post(path, json=body)
    assert response.status_code == 422 and f"over {schemas.MAX_HYPOTHESES} hypotheses" in response.text


def test_a_beam_within_the_budget_is_accepted() -> None:
    request = schemas.SampleRequest(n=4, strategy=schemas.StrategyChoice(kind="beam", beam=16))
    assert request.decodings() * request.strategy.beam == schemas.MAX_HYPOTHESES
    assert schemas.SampleRequest(n=50, strategy=schemas.StrategyChoice(kind="sample", beam=16)).n == 50


def test_a_long_prefix_is_read_in_steps_as_one_pass_would_read_it() -> None:
    model = vaegen.load(checkpoint.BUNDLED, "cpu").model
    z = torch.randn(3, model.config.latent_dim, generator=torch.Generator().manual_seed(0))
    prefix = torch.randint(10, 2000, (2 * decoding.READ_CHUNK + 5,), generator=torch.Generator().manual_seed(1)).tolist()
    with torch.no_grad():
        inputs = torch.tensor([[BOS_ID, *prefix[:-1]]]).expand(3, -1)
        logits, _ = model.decode(inputs, z, model.initial_state(z))
        whole = logits.log_softmax(dim=-1).gather(-1, torch.tensor(prefix).expand(3, -1).unsqueeze(-1)).sum(dim=(1, 2))
    steps = Counter()

    def step() -> None:
        steps.count += 1

    with decoding.between_steps(step):
        assert torch.allclose(decoding.prefix_log_likelihood(model, z, prefix), whole, atol=1e-3)
    assert steps.count == 3  # one per chunk: where a gate may hand the model on, or stop the call


def test_a_hook_that_raises_stops_a_decoding_at_once() -> None:
    model = vaegen.load(checkpoint.BUNDLED, "cpu").model
    z = torch.randn(4, model.config.latent_dim)
    steps = Counter()

    class Stop(Exception):
        pass

    def stop_at_the_third() -> None:
        steps.count += 1
        if steps.count == 3:
            raise Stop

    with decoding.between_steps(stop_at_the_third), pytest.raises(Stop):
        decoding.generate(model, z, 40, decoding.SAMPLING)
    assert steps.count == 3
    assert len(decoding.generate(model, z, 5).ids) == 4  # outside the block, no hook runs


# Numbers that are not finite


@pytest.mark.parametrize("path, body, field", [
    ("/api/decode", {"points": [[float("nan"), 0.0]]}, ["body", "points", 0, 0]),
    ("/api/decode", {"points": [[0.0, float("-inf")]]}, ["body", "points", 0, 1]),
    ("/api/near", {"text": "一", "radius": float("nan")}, ["body", "radius"]),
    ("/api/sample", {"strategy": {"temperature": float("inf")}}, ["body", "strategy", "temperature"]),
    ("/api/sample", {"strategy": {"top_p": float("nan")}}, ["body", "strategy", "top_p"]),
])
def test_nan_and_infinity_are_refused_with_a_422_naming_the_field(client: TestClient, path: str, body: dict,
                                                                   field: list) -> None:
    raw = json.dumps(body)  # Python's json writes NaN, Infinity and -Infinity, which its json reads back
    assert "NaN" in raw or "Infinity" in raw
    status, text = post_raw(client, path, raw)
    assert status == 422, text
    error = json.loads(text)["detail"][0]
    assert error["loc"] == field and error["type"] == "finite_number"


def test_a_number_too_large_for_a_float_is_refused_too(client: TestClient) -> None:
    status, text = post_raw(client, "/api/decode", '{"points": [[1e999, 0]]}')  # json reads it as infinity
    assert status == 422 and "finite" in text


# The gate: turns, timeouts, dropped calls


def costly(service: Service, ended: threading.Event | None = None) -> Callable[[], schemas.Results]:
    """Fifty ci in the longest form the model writes: 161 steps, each at least STEP_SECONDS."""
    def call() -> schemas.Results:
        try:
            return service.sample(schemas.SampleRequest(n=50, tune=TUNE, form=LONGEST, seed=0))
        finally:
            if ended is not None:
                ended.set()
    return call


def quick(service: Service) -> Callable[[], schemas.Results]:
    """One ci of one character: three steps."""
    return lambda: service.sample(schemas.SampleRequest(n=1, tune=TUNE, form="1。", seed=0))


def test_a_call_past_the_timeout_is_stopped_and_the_model_is_free_at_once(service: Service, steps: Counter) -> None:
    ended = threading.Event()

    async def scenario() -> tuple[HTTPException, int, float]:
        with ModelGate(timeout=0.5) as gate:
            with pytest.raises(HTTPException) as refused:
                await gate.run(costly(service, ended))
            at_refusal, started = steps.count, time.perf_counter()
            assert len((await gate.run(quick(service))).results) == 1
            waited = time.perf_counter() - started
            await asyncio.sleep(0.3)
            return refused.value, steps.count - at_refusal, waited

    refused, steps_after, waited = asyncio.run(scenario())
    assert refused.status_code == 503 and "did not answer within 0.5 s" in refused.detail
    assert ended.wait(1.0)  # the abandoned call stopped, long before its 161 steps
    assert steps_after <= 3 + 1  # the quick call's three, and at most the one the abandoned call was taking
    assert waited < 1.0


def test_a_call_whose_client_has_gone_is_stopped(service: Service, steps: Counter) -> None:
    ended = threading.Event()

    async def gone() -> bool:
        return steps.count > 5

    async def scenario() -> HTTPException:
        with ModelGate(timeout=30) as gate, pytest.raises(HTTPException) as refused:
            await gate.run(costly(service, ended), gone)
        return refused.value

    started = time.perf_counter()
    refused = asyncio.run(scenario())
    assert refused.status_code == 503 and "gone" in refused.detail
    assert ended.wait(1.0) and time.perf_counter() - started < 5


def test_a_costly_call_does_not_hold_up_a_quick_one(service: Service, steps: Counter) -> None:
    ended = threading.Event()

    async def scenario() -> float:
        with ModelGate(timeout=30) as gate:
            running = asyncio.ensure_future(gate.run(costly(service, ended)))
            await asyncio.sleep(0.3)  # it has the model
            started = time.perf_counter()
            await gate.run(quick(service))
            waited = time.perf_counter() - started
            assert not running.done()  # one after the other, the quick call would have waited for all of it
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
            return waited

    assert asyncio.run(scenario()) < 1.5
    assert ended.wait(1.0)  # a cancelled request stops its call too


def test_costly_calls_make_room_for_a_new_one_when_the_gate_is_full(service: Service, steps: Counter) -> None:
    async def scenario() -> tuple[list[BaseException | None], float]:
        with ModelGate(depth=2, timeout=30) as gate:
            running = [asyncio.ensure_future(gate.run(costly(service))) for _ in range(2)]
            await asyncio.sleep(1.0)  # each has had the model for longer than ordinary calls take
            started = time.perf_counter()
            await gate.run(quick(service))
            waited = time.perf_counter() - started
            ended = [r.exception() for r in running if r.done()]
            for r in running:
                r.cancel()
            await asyncio.gather(*running, return_exceptions=True)
            return ended, waited

    ended, waited = asyncio.run(scenario())
    assert len(ended) == 1 and isinstance(ended[0], HTTPException) and ended[0].status_code == 503
    assert "dropped for a newer request" in ended[0].detail and waited < 1.5


def test_closing_the_gate_stops_the_calls_it_holds(service: Service, steps: Counter) -> None:
    ended = threading.Event()

    async def scenario() -> object:
        gate = ModelGate(timeout=30)
        running = asyncio.ensure_future(gate.run(costly(service, ended)))
        await asyncio.sleep(0.3)
        gate.close()
        return (await asyncio.gather(running, return_exceptions=True))[0]

    outcome = asyncio.run(scenario())
    assert isinstance(outcome, HTTPException) and "shutting down" in outcome.detail and ended.wait(1.0)
