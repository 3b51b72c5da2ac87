"""`vaegen serve` opens at once: a real server process on loopback answers the page within seconds of its start
while its map is still being built in the background, shows how far the build has come, and stops at once on
Ctrl-C in the middle of it; a model that ships with vaegen shows the map that ships with it, and only when that
map was made from the very same file."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

import vaegen
from vaegen.core import checkpoint, shipped
from vaegen.generate import landscape as maps
from vaegen.serve.landscape import served_map
from vaegen.serve.settings import Settings

pytest.importorskip("uvicorn")
pytest.importorskip("sklearn")

START_SECONDS = 3.0  # from the process's start to the page: what a user waits for before the page opens


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as response:
        body: bytes = response.read()
        return body


def wait_for(url: str, server: subprocess.Popen[str], seconds: float) -> None:
    """Ask `url` every 20 ms until it answers, while the server runs."""
    started = time.perf_counter()
    while time.perf_counter() - started < seconds and server.poll() is None:
        try:
            get(url)
            return
        except OSError:
            time.sleep(0.02)
    raise AssertionError(f"{url} did not answer within {seconds} s")


def test_the_page_answers_at_once_while_the_map_builds_and_ctrl_c_stops_the_build(
        tiny_checkpoint: Path, tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "vaegen", "serve", "-c", str(tiny_checkpoint), "--port", str(port),
               "--points", "5000"]  # minutes of decoding and laying out: still building when it is stopped
    started = time.perf_counter()
    server = subprocess.Popen(command, env={**os.environ, "VAEGEN_CACHE_DIR": str(tmp_path)},
                              stderr=subprocess.PIPE, text=True)
    try:
        wait_for(base + "/", server, 60)
        opened = time.perf_counter() - started
        first = json.loads(get(base + "/api/map"))
        view = first
        while view["done"] == first["done"] and time.perf_counter() - started < 60:  # the build moves on
            time.sleep(0.1)
            view = json.loads(get(base + "/api/map"))
        asked = json.loads(get(base + "/api/health"))
        interrupted = time.perf_counter()
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)
        stopped = time.perf_counter() - interrupted
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    assert server.stderr is not None
    notes = server.stderr.read()
    assert opened < START_SECONDS, f"the page took {opened:.1f} s to answer"
    assert first["status"] == view["status"] == "building" and first["total"] == 5000 and view["done"] > first["done"]
    assert asked["map_points"] == 5000 and asked["map_source"] == "prior"
    assert stopped < 5.0, f"Ctrl-C took {stopped:.1f} s to stop the server"
    assert "map: decoding" in notes and "Traceback" not in notes, notes


def test_a_shipped_model_shows_the_map_that_ships_with_it() -> None:
    model = vaegen.load(checkpoint.BUNDLED, "cpu")
    notes: list[str] = []
    started = time.perf_counter()
    served = served_map(model, checkpoint.BUNDLED, Settings(), notes.append)
    assert time.perf_counter() - started < START_SECONDS
    assert served.landscape is not None and served.source == "corpus" and served.total == len(served.landscape.texts)
    assert served.landscape.kept["neighbours"] > served.landscape.kept["axes"]
    assert notes == [f"map: the {served.total:,} sentences of songci-lines's test split that ship with it"]


def test_a_shipped_map_made_from_another_file_is_not_shown(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ships = shipped.find(shipped.DEFAULT)
    stale = maps.read(ships.map)
    assert stale is not None
    stale.checkpoint = "another file"
    buffer = io.BytesIO()
    maps.write(buffer, stale)
    (tmp_path / "stale.map.pt").write_bytes(buffer.getvalue())
    monkeypatch.setattr(shipped, "named", lambda path: dataclasses.replace(ships, map=tmp_path / "stale.map.pt"))
    monkeypatch.setenv("VAEGEN_CACHE_DIR", str(tmp_path))
    notes: list[str] = []
    served = served_map(vaegen.load(ships.file, "cpu"), ships.file, Settings(map_points=20), notes.append)
    assert served.landscape is None and served.total == 20 and served.view().status == "building"
    assert "none ships with this file" in notes[0] and "in the background" in notes[1]
