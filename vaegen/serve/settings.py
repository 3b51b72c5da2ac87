"""What the server is told, read from the environment: uvicorn calls the application factory with no arguments,
so its settings travel as environment variables (`vaegen serve` sets them from its options).

    VAEGEN_CHECKPOINT  the checkpoint; default ./vaegen.pt, else the model of whole ci by tune that ships
    VAEGEN_DEVICE      the torch device; default cuda when available, else cpu
    VAEGEN_MAP_CORPUS  draw the map from this corpus's sentences; default: for a model that ships with vaegen, the
                       map that ships with it (its corpus's test split), else sentences sampled from the prior
    VAEGEN_MAP_POINTS  sentences on a map built at the start, 10 to 5,000; default 1,000
    VAEGEN_SERVE_URL   the address to print once the server is ready; default: none printed
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from vaegen.core.config import MAP_POINTS, MAX_MAP_POINTS, MIN_MAP_POINTS
from vaegen.core.errors import VaegenError


@dataclass(frozen=True)
class Settings:
    checkpoint: Path | None = None
    device: str | None = None
    map_corpus: Path | None = None
    map_points: int = MAP_POINTS
    url: str | None = None

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """The settings in `environ` (default: this process's environment); an empty variable counts as unset."""
        env = {name: value for name, value in (os.environ if environ is None else environ).items() if value}
        points = env.get("VAEGEN_MAP_POINTS", str(cls.map_points))
        if not (points.isascii() and points.isdigit() and MIN_MAP_POINTS <= int(points) <= MAX_MAP_POINTS):
            raise VaegenError(f"$VAEGEN_MAP_POINTS is {points!r}; give a whole number from {MIN_MAP_POINTS} to "
                              f"{MAX_MAP_POINTS:,}")
        corpus = env.get("VAEGEN_MAP_CORPUS")
        if corpus is not None and not Path(corpus).is_file():
            raise VaegenError(f"$VAEGEN_MAP_CORPUS {corpus} does not exist or is not a file; give a text file, one "
                              "sentence per line")
        return cls(checkpoint=Path(env["VAEGEN_CHECKPOINT"]) if "VAEGEN_CHECKPOINT" in env else None,
                   device=env.get("VAEGEN_DEVICE"), map_corpus=Path(corpus) if corpus is not None else None,
                   map_points=int(points), url=env.get("VAEGEN_SERVE_URL"))
