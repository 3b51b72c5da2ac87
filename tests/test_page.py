"""The page of `vaegen serve` in a real headless Chromium (Debian's `chromium`, driven by Playwright): the map,
a typed sentence's reconstruction, a click that decodes, an interpolation, a ci by tune; and not one request
outside the server. Skipped where Playwright or Chromium is missing, unless $VAEGEN_REQUIRE_BROWSER is set
(as CI sets it); with $VAEGEN_SCREENSHOTS=DIR it saves the screenshots of docs/img there."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from vaegen.songci.forms import form_of

CI_A = "一曲新词酒一杯。去年天气旧亭台。夕阳西下几时回。无可奈何花落去，似曾相识燕归来。小园香径独徘徊。"
CI_B = "青杏园林著酒香。佳人初试薄罗裳。柳丝无力燕飞忙。乍雨乍晴花自落，闲愁闲闷日偏长。为谁消瘦减容光。"
BROWSER = os.environ.get("VAEGEN_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


def needs(available: bool, what: str) -> None:
    if not available:
        if os.environ.get("VAEGEN_REQUIRE_BROWSER"):
            pytest.fail(f"{what} is missing and $VAEGEN_REQUIRE_BROWSER is set")
        pytest.skip(f"{what} is missing")


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """The shipped model of whole ci behind a real uvicorn server on a free loopback port."""
    needs(shutil.which("true") is not None and _importable("uvicorn") and _importable("fastapi"), "vaegen[serve]")
    import uvicorn

    import vaegen
    from vaegen.core import checkpoint
    from vaegen.serve.app import create_app
    from vaegen.serve.landscape import build
    from vaegen.serve.service import Service

    model = vaegen.load(checkpoint.BUNDLED_TUNES, "cpu")
    app = create_app(Service(model, build(model, None, 300), "songci-ci.pt"))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    instance = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    while not instance.started:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    instance.should_exit = True
    thread.join(timeout=10)


def _importable(name: str) -> bool:
    from importlib.util import find_spec

    return find_spec(name) is not None


def idle(page: object) -> None:
    page.wait_for_selector("body[data-busy='0']", timeout=60_000)  # type: ignore[attr-defined]


def test_the_page_explores_the_space_and_asks_nothing_of_other_origins(server: str) -> None:
    needs(_importable("playwright"), "playwright")
    needs(BROWSER is not None, "Chromium (apt-get install chromium)")
    from playwright.sync_api import Request, sync_playwright

    shots = Path(os.environ["VAEGEN_SCREENSHOTS"]) if os.environ.get("VAEGEN_SCREENSHOTS") else None
    requested: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=BROWSER, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.on("request", lambda request: requested.append(request.url))
        sent: dict[str, Any] = {}  # the last body sent to each endpoint

        def note_body(request: Request) -> None:
            if request.method == "POST":
                sent[request.url.removeprefix(server)] = request.post_data_json

        page.on("request", note_body)
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(server)
        idle(page)
        assert page.locator("#map circle.point").count() == 300  # the map is drawn

        page.select_option("#tune", "浣溪沙")
        page.fill("#text", CI_A)
        page.click("#encode")
        idle(page)
        reconstruction = page.inner_text("#reconstruction").strip()
        assert form_of(reconstruction) == "7。7。7。7，7。7。"  # read back from the page, in the tune's form
        assert page.locator("#neighbours li").count() > 0

        box = page.locator("#map").bounding_box()
        assert box is not None
        page.mouse.click(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.7)
        idle(page)
        decoded = page.locator("#decoded-list li")
        assert decoded.count() == 1 and form_of(decoded.first.inner_text()) == "7。7。7。7，7。7。"
        if shots:
            page.screenshot(path=str(shots / "serve-map.png"))

        page.fill("#a", CI_A)
        page.fill("#b", CI_B)
        page.fill("#steps", "5")
        page.click("#interpolate")
        idle(page)
        assert page.locator("#path-steps li").count() == 5
        assert page.locator("#map polyline.path-line").count() == 1  # the path drawn on the map
        assert "action=interpolate" in page.url  # the view can be shared
        if shots:
            page.screenshot(path=str(shots / "serve-path.png"))

        page.select_option("#tune", "水调歌头")
        page.select_option("#form", index=2)  # the tune's second most common form
        form = page.locator("#form").input_value()
        page.click("#write-ci")
        idle(page)
        assert page.inner_text("#ci-form").strip() == form
        assert form_of(page.inner_text("#ci-text").strip()) == form
        if shots:
            page.screenshot(path=str(shots / "serve-ci.png"))
        browser.close()
    assert not errors, errors
    # Every action at its default strategy, the command line's: the API's greedy default to reconstruct, decode a
    # point and interpolate, its sampling default to write a ci
    assert {path: "strategy" in body for path, body in sent.items()} == {
        "/api/reconstruct": False, "/api/decode": False, "/api/interpolate": False, "/api/sample": False}
    assert requested and all(url.startswith(server + "/") or url == server for url in requested), requested
