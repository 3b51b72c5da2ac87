"""The page of `vaegen serve` in a real headless Chromium (Debian's `chromium`, driven by Playwright): the map by
neighbours and on its principal axes, its colours, a typed sentence's reconstruction, a click that decodes, an
interpolation, a ci by tune; a map's build shown as it goes and then the map; and not one request outside the
server. Skipped where Playwright or Chromium is missing, unless $VAEGEN_REQUIRE_BROWSER is set
(as CI sets it); with $VAEGEN_SCREENSHOTS=DIR it saves the screenshots of docs/img there."""

from __future__ import annotations

import json
import os
import shutil
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from vaegen.songci.forms import form_of

if TYPE_CHECKING:
    from fastapi import FastAPI

CI_A = "一曲新词酒一杯。去年天气旧亭台。夕阳西下几时回。无可奈何花落去，似曾相识燕归来。小园香径独徘徊。"
CI_B = "青杏园林著酒香。佳人初试薄罗裳。柳丝无力燕飞忙。乍雨乍晴花自落，闲愁闲闷日偏长。为谁消瘦减容光。"
BROWSER = os.environ.get("VAEGEN_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


def needs(available: bool, what: str) -> None:
    if not available:
        if os.environ.get("VAEGEN_REQUIRE_BROWSER"):
            pytest.fail(f"{what} is missing and $VAEGEN_REQUIRE_BROWSER is set")
        pytest.skip(f"{what} is missing")


@contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """`app` behind a real uvicorn server on a free loopback port, for the time of the block: its address."""
    import uvicorn

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    instance = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    while not instance.started:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        instance.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """The shipped model of whole ci with the map that ships with it, served."""
    needs(_importable("uvicorn") and _importable("fastapi") and _importable("sklearn"), "vaegen[serve]")
    import vaegen
    from vaegen.core import shipped
    from vaegen.generate.landscape import read
    from vaegen.serve.app import create_app
    from vaegen.serve.landscape import ServedMap
    from vaegen.serve.service import Service

    ships = shipped.find(shipped.DEFAULT_TUNES)
    landscape = read(ships.map)
    assert landscape is not None, f"{ships.map} is missing: `vaegen map` makes it (vaegen/models/README.md)"
    service = Service(vaegen.load(ships.file, "cpu"), ServedMap.ready(landscape), ships.file.name)
    with serving(create_app(service)) as url:
        yield url


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
        total = json.loads(urllib.request.urlopen(server + "/api/map").read())["total"]
        assert page.locator("#map circle.point").count() == total  # the map is drawn, by neighbours
        assert page.inner_text("#kept").startswith("neighbours in z kept on screen: ")
        assert page.locator("#colour-legend li").count() == 10  # coloured by tune: the nine most common, and the rest
        page.select_option("#colour", "word")
        page.fill("#word", "春")
        assert "contain “春”" in page.inner_text("#colour-legend")

        page.select_option("#tune", "浣溪沙")
        page.fill("#text", CI_A)
        page.click("#encode")
        idle(page)
        reconstruction = page.inner_text("#reconstruction").strip()
        assert form_of(reconstruction) == "7。7。7。7，7。7。"  # read back from the page, in the tune's form
        assert page.locator("#neighbours li").count() > 0
        assert page.locator("#overlay .marker.encoded").count() == 1  # placed among its neighbours on the map

        page.select_option("#layout", "axes")  # a click decodes on the principal axes
        assert page.is_visible("#axis-x") and "of variance" in page.inner_text("#axis-x")
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


def test_the_page_shows_the_maps_build_as_it_goes_and_then_the_map() -> None:
    needs(_importable("uvicorn") and _importable("fastapi") and _importable("sklearn"), "vaegen[serve]")
    needs(_importable("playwright"), "playwright")
    needs(BROWSER is not None, "Chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    import vaegen
    from vaegen.core import shipped
    from vaegen.generate.landscape import Landscape, read
    from vaegen.serve.app import create_app
    from vaegen.serve.landscape import ServedMap
    from vaegen.serve.service import Service

    ships = shipped.find(shipped.DEFAULT)
    landscape = read(ships.map)
    assert landscape is not None
    release = threading.Event()

    def build(progress: Any) -> Landscape:  # a build held at 40 of 100 until the page has shown it
        progress("encoding", 40, 100)
        release.wait(60)
        progress("laying out", 100, 100)
        return landscape

    served = ServedMap("corpus", 100, build=build)
    with serving(create_app(Service(vaegen.load(ships.file, "cpu"), served, ships.file.name))) as url, \
            sync_playwright() as p:
        browser = p.chromium.launch(executable_path=BROWSER, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1200, "height": 800})
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(url)
        page.wait_for_selector("#map-progress:not([hidden])", timeout=30_000)
        page.wait_for_function("document.getElementById('map-progress-text').textContent.includes('40 of 100')")
        assert page.locator("#map circle.point").count() == 0
        idle(page)  # the page is free to use while the map is built
        release.set()
        page.wait_for_selector("#map-progress", state="hidden", timeout=30_000)
        assert page.locator("#map circle.point").count() == len(landscape.texts)
        assert "%" in page.inner_text("#kept")
        browser.close()
    assert not errors, errors
