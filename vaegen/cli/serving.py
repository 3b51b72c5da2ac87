"""`vaegen serve`: the model's latent space as a local web page (needs the `serve` extra).

The command checks its options, then runs the server as uvicorn documents for an application factory:
`uvicorn.run("vaegen.serve.app:create_app", factory=True)`. uvicorn calls the factory with no arguments, so the
options reach it as environment variables, set for the time the server runs:

    VAEGEN_CHECKPOINT  --checkpoint, or the file of --model (left as it is without them: the factory falls back on it
                       as the CLI does)
    VAEGEN_DEVICE      --device (unset without one: cuda when available, else cpu)
    VAEGEN_MAP_CORPUS  --corpus (unset without one: a shipped model's own map, else samples of the prior)
    VAEGEN_MAP_POINTS  --points
    VAEGEN_SERVE_URL   the address the factory prints once the model is loaded

The factory loads the model before uvicorn binds the port; an error there (a bad checkpoint) comes back out of
`uvicorn.run` as the library's `VaegenError`, one line of error like any command's. The map comes after: a
shipped or cached one at once, else built in the background while the server already answers.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.util import find_spec
from pathlib import Path
from typing import Annotated

import typer

from vaegen.cli.options import CheckpointOption, DeviceOption, ModelOption, note
from vaegen.core.config import MAP_POINTS, MAX_MAP_POINTS, MIN_MAP_POINTS
from vaegen.core.errors import VaegenError


def serve(
    corpus: Annotated[Path | None, typer.Option(show_default=False, help="Draw the map from this corpus's sentences "
                                                "(one per line, or 'tune<TAB>text'; up to --points of them, drawn "
                                                "evenly). Default: for a model that ships with vaegen, the map that "
                                                "ships with it (its corpus's test split); else sentences the model "
                                                "samples from its prior.")] = None,
    points: Annotated[int, typer.Option(min=MIN_MAP_POINTS, max=MAX_MAP_POINTS, help="Sentences on a map built at "
                                        "the start (a shipped model's map has its own).")] = MAP_POINTS,
    host: Annotated[str, typer.Option(help="Address to listen on. Anything but a loopback address exposes the "
                                      "model to the network (a warning says so).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65_535, help="Port to listen on.")] = 8000,
    checkpoint: CheckpointOption = None,
    model_name: ModelOption = None,
    device: DeviceOption = None,
) -> None:
    """Explore the model's continuous space of sentences in the browser: a map of sentences laid out so that
    neighbours in z are neighbours on screen, or on the two principal axes of their codes, where a click anywhere
    decodes that point; coloured by length, tune or a word; with encoding, interpolation paths, sampling around a
    sentence and, for a model of tunes, ci by tune; over a JSON API (schema at /openapi.json). Without a model or
    checkpoint it serves the model of whole Song ci that ships with vaegen. The page opens at once: a shipped
    model shows the map that ships with it, and any other map is built in the background (progress on the page
    and here) and cached under the hashes of the model and corpus, so a restart shows it at once."""
    if find_spec("fastapi") is None or find_spec("uvicorn") is None or find_spec("sklearn") is None:
        raise VaegenError("vaegen serve needs FastAPI, uvicorn and scikit-learn: pip install 'vaegen[serve]'")
    if corpus is not None and not corpus.is_file():
        raise VaegenError(f"--corpus {corpus} does not exist or is not a file; give a text file, one sentence per line")
    import uvicorn

    if not _loopback(host):
        note(f"warning: --host {host} serves the model to every machine that can reach this one; "
             "vaegen serve has no authentication")
    url = f"http://{host if ':' not in host else f'[{host}]'}:{port}"
    settings = {"VAEGEN_DEVICE": device, "VAEGEN_MAP_CORPUS": None if corpus is None else str(corpus),
                "VAEGEN_MAP_POINTS": str(points), "VAEGEN_SERVE_URL": url}
    if checkpoint is not None or model_name is not None:
        from vaegen.core.checkpoint import locate

        settings["VAEGEN_CHECKPOINT"] = str(locate(checkpoint, model=model_name))
    with _environment(settings):
        uvicorn.run("vaegen.serve.app:create_app", factory=True, host=host, port=port, log_level="warning")


@contextmanager
def _environment(settings: dict[str, str | None]) -> Iterator[None]:
    """Set each variable (unset it for None) for the time of the block, then put back what was there."""
    saved = {name: os.environ.get(name) for name in settings}
    _set(settings)
    try:
        yield
    finally:
        _set(saved)


def _set(settings: dict[str, str | None]) -> None:
    for name, value in settings.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
