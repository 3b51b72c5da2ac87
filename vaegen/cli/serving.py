"""`vaegen serve`: the model's latent space as a local web page (needs the `serve` extra)."""

from __future__ import annotations

import ipaddress
import time
from importlib.util import find_spec
from pathlib import Path
from typing import Annotated

import typer

from vaegen.cli.options import CheckpointOption, DeviceOption, note
from vaegen.errors import VaegenError

MAX_MAP_POINTS = 5_000


def serve(
    corpus: Annotated[Path | None, typer.Option(show_default=False, help="Draw the map from this corpus's sentences "
                                                "(one per line, or 'tune<TAB>text'; up to --points of them, drawn "
                                                "evenly). Default: sentences the model samples from its prior.")] = None,
    points: Annotated[int, typer.Option(min=10, max=MAX_MAP_POINTS, help="Sentences on the map.")] = 1_000,
    host: Annotated[str, typer.Option(help="Address to listen on. Anything but a loopback address exposes the "
                                      "model to the network (a warning says so).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65_535, help="Port to listen on.")] = 8000,
    checkpoint: CheckpointOption = None,
    device: DeviceOption = None,
) -> None:
    """Explore the model's continuous space of sentences in the browser: a map of sentences on the two
    principal axes of their codes, where a click anywhere decodes that point, with encoding, interpolation
    paths, sampling around a sentence and, for a model of tunes, ci by tune; over a JSON API (schema at
    /openapi.json). Without a checkpoint it serves the model of whole Song ci that ships with vaegen. The map
    is cached under the hashes of the model and corpus, so a restart shows it at once."""
    if find_spec("fastapi") is None or find_spec("uvicorn") is None:
        raise VaegenError("vaegen serve needs FastAPI and uvicorn: pip install 'vaegen[serve]'")
    if corpus is not None and not corpus.is_file():
        raise VaegenError(f"--corpus {corpus} does not exist or is not a file; give a text file, one sentence per line")
    import uvicorn

    from vaegen import checkpoint as checkpoints
    from vaegen.cli.options import load_model
    from vaegen.serve.app import Service, create_app
    from vaegen.serve.gate import ModelGate
    from vaegen.serve.landscape import cached

    if not _loopback(host):
        note(f"warning: --host {host} serves the model to every machine that can reach this one; "
             "vaegen serve has no authentication")
    started = time.perf_counter()
    location = checkpoints.locate(checkpoint, tunes=True)
    model = load_model(location, device)
    landscape, was_cached = cached(model, location, corpus, points)
    app = create_app(Service(model, landscape, location.name, ModelGate()))
    note(f"map of {len(landscape.texts):,} {landscape.source} sentences "
         f"{'read from the cache' if was_cached else 'computed and cached'}; ready in "
         f"{time.perf_counter() - started:.1f} s")
    note(f"http://{host if ':' not in host else f'[{host}]'}:{port}")
    uvicorn.run(app, host=host, port=port, log_level="warning")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
