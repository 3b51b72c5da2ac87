"""The map `vaegen serve` shows, and how it shows one without keeping anyone waiting.

Where the map comes from (`served_map`): a --corpus's sentences; else, for a model that ships with vaegen, the map
that ships beside it (`vaegen map` made it from its corpus's test split), when it was made from this very file;
else samples from the prior. A map built before is read back from the disk cache, filed under the hashes of the
checkpoint, the corpus and the settings. A map not yet built is built on a daemon thread while the server already
answers: `ServedMap` holds its progress (GET /api/map, and a line on stderr each tenth of the way) until the map
is there. The build calls the model beside the gate's worker rather than through it: it is minutes of work that
would hold every request behind it, and a model's forward pass keeps no state, so the two can run at once (they
share the cores). Ctrl-C stops the server at once: the thread is a daemon, and it stops at its next chunk when
the server shuts down.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import torch
from fastapi import HTTPException

from vaegen.core import shipped
from vaegen.core.data import read_lines
from vaegen.core.errors import Interrupted
from vaegen.core.files import cache_dir, cache_key, cached
from vaegen.generate.generator import SentenceGenerator
from vaegen.generate.landscape import Landscape, Progress, build, fingerprint, quiet, read, write
from vaegen.serve import schemas as s
from vaegen.serve.settings import Settings

CACHE_VERSION = "map-2"  # bumped when what an entry holds changes: an entry of another version is never read
STEPS = 10  # stderr tells a build's progress this many times

Place = tuple[float | None, float | None, tuple[float, float] | None]  # (x, y) on the principal axes, and by neighbours


def cache_path(checkpoint: str, corpus: Path | None, limit: int, seed: int) -> Path:
    """Where the map of this checkpoint (its fingerprint), corpus and settings is cached."""
    drawn_from = fingerprint(corpus) if corpus is not None else "prior"
    return cache_dir() / f"map-{cache_key(CACHE_VERSION, str(limit), str(seed), checkpoint, drawn_from)}.pt"


def cached_map(model: SentenceGenerator, digest: str, corpus: Path | None, limit: int, seed: int = 0,
               progress: Progress = quiet) -> tuple[Landscape, bool]:
    """The map, read from the cache when this checkpoint (`digest`, its fingerprint), corpus and settings made one
    before; (map, cached)."""
    return cached(cache_path(digest, corpus, limit, seed), read,
                  lambda: build(model, corpus, limit, checkpoint=digest, seed=seed, progress=progress), write)


class ServedMap:
    """The map, ready or on its way: a daemon thread builds it with `build`, reporting its progress here."""

    def __init__(self, source: s.MapSource, total: int, landscape: Landscape | None = None,
                 build: Callable[[Progress], Landscape] | None = None,
                 note: Callable[[str], None] = lambda message: None) -> None:
        self.source, self.total, self.landscape = source, total, landscape
        self.stage, self.done = "waiting", 0
        self.error: str | None = None  # why the build failed
        self._build, self._note = build, note
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def ready(cls, landscape: Landscape) -> ServedMap:
        return cls("corpus" if landscape.source == "corpus" else "prior", len(landscape.texts), landscape)

    def start(self) -> None:
        """Start building, unless the map is there or on its way."""
        if self.landscape is None and self._build is not None and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="vaegen-map", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop a build at its next chunk (the server is shutting down)."""
        self._stop.set()

    def _run(self) -> None:
        assert self._build is not None
        started = time.perf_counter()
        try:
            landscape = self._build(self._report)
        except Interrupted:
            return
        except Exception as error:  # noqa: BLE001 -- a map that fails leaves the server running without one, saying why
            self.error = str(error) or type(error).__name__
            self._note(f"map: not built: {self.error}")
            return
        self.landscape, self.total = landscape, len(landscape.texts)
        self._note(f"map built in {time.perf_counter() - started:.1f} s: {landscape.headline()}")

    def _report(self, stage: str, done: int, total: int) -> None:
        if self._stop.is_set():
            raise Interrupted("the map's build was stopped")
        step = STEPS * done // max(total, 1)
        if stage != self.stage or step > STEPS * self.done // max(self.total, 1):
            self._note(f"map: {stage} {done:,}/{total:,} sentences" if stage != "laying out" else
                       f"map: laying out {total:,} sentences by their neighbours in z")
        self.stage, self.done, self.total = stage, done, total

    def place(self, z: torch.Tensor) -> list[Place]:
        """Codes (N, L) -> where each falls on the map: nowhere yet while the map is being built."""
        landscape = self.landscape
        if landscape is None:
            return [(None, None, None)] * len(z)
        axes, layout = landscape.project(z).tolist(), landscape.place(z).tolist()
        return [(x, y, (u, v)) for (x, y), (u, v) in zip(axes, layout)]

    def lift(self, points: torch.Tensor) -> torch.Tensor:
        """Points (N, 2) on the principal axes -> codes (N, L); refused while there are no axes yet."""
        if self.landscape is None:
            raise HTTPException(503, "the map is still being built: its axes are not known yet; retry when it shows")
        return self.landscape.lift(points)

    def nearest(self, z: torch.Tensor, k: int) -> list[list[tuple[str, float]]]:
        """The k map sentences nearest each code in z; none while the map is being built."""
        return self.landscape.nearest(z, k) if self.landscape is not None else [[] for _ in range(len(z))]

    def view(self) -> s.MapView:
        """The map, or how far its build has come."""
        landscape = self.landscape
        if landscape is None:
            return s.MapView(status="failed" if self.error else "building", stage=self.stage, done=self.done,
                             total=self.total, source=self.source, error=self.error)
        tunes: list[str] | list[None] = landscape.tunes or [None] * len(landscape.texts)
        points = [s.MapPoint(x=x, y=y, layout=(u, v), text=text, tune=tune) for (x, y), (u, v), text, tune
                  in zip(landscape.points().tolist(), landscape.layout.tolist(), landscape.texts, tunes)]
        return s.MapView(status="ready", done=self.total, total=self.total, source=self.source, points=points,
                         explained=landscape.explained, kept=s.Kept(**landscape.kept))


def served_map(model: SentenceGenerator, checkpoint: Path, settings: Settings,
               note: Callable[[str], None]) -> ServedMap:
    """The map for these settings: the shipped one, the cached one, or one to build once the server listens."""
    digest = fingerprint(checkpoint)
    ships = shipped.named(checkpoint.resolve())
    if settings.map_corpus is None and ships is not None:
        landscape = read(ships.map) if ships.map.is_file() else None
        if landscape is not None and landscape.checkpoint == digest:
            note(f"map: the {len(landscape.texts):,} sentences of {ships.name}'s test split that ship with it")
            return ServedMap.ready(landscape)
        note(f"map: none ships with this file of {ships.name} (`vaegen map` makes one); drawing one from the prior")
    corpus, limit = settings.map_corpus, settings.map_points
    path = cache_path(digest, corpus, limit, 0)
    if path.is_file() and (landscape := read(path)) is not None:
        note(f"map of {len(landscape.texts):,} {landscape.source} sentences read from the cache")
        return ServedMap.ready(landscape)
    total = min(limit, len(read_lines(corpus))) if corpus is not None else limit
    note(f"map: building it from {total:,} {'corpus' if corpus is not None else 'prior'} sentences in the background; "
         "the page shows its progress")
    return ServedMap("corpus" if corpus is not None else "prior", total, None,
                     lambda report: cached_map(model, digest, corpus, limit, progress=report)[0], note)
