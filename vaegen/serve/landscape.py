"""The map: the codes of up to a few thousand sentences projected on their two principal axes.

The sentences are a corpus's (their posterior means) or, without one, samples from the prior (the codes they
were decoded from). The projection is linear, so every point of the plane lifts back to a code (the mean
plus the point along the two axes) and every code falls on the plane; a click anywhere decodes. Building
the map is the slow part of a start (encoding or decoding every sentence), so it is cached on disk under
the hashes of the checkpoint, the corpus and the settings: a restart reads it back at once.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import torch

from vaegen.core.config import SAMPLING_TEMPERATURE, SAMPLING_TOP_P
from vaegen.core.data import Examples, examples_of, read_lines
from vaegen.core.files import cache_dir, cache_key, cached
from vaegen.core.metrics import principal_axes
from vaegen.generate.decoding import Strategy
from vaegen.generate.generator import SentenceGenerator

CACHE_VERSION = "map-1"  # bumped when what an entry holds changes


@dataclass
class Landscape:
    texts: list[str]
    codes: torch.Tensor  # (N, L) the sentences' codes
    mean: torch.Tensor  # (L,)
    axes: torch.Tensor  # (2, L) orthonormal: the codes' first two principal directions
    explained: list[float]  # the share of the codes' variance along each axis
    source: str  # "corpus" or "prior"

    def project(self, z: torch.Tensor) -> torch.Tensor:
        """Codes (N, L) -> map points (N, 2)."""
        return (z.float() - self.mean) @ self.axes.T

    def lift(self, points: torch.Tensor) -> torch.Tensor:
        """Map points (N, 2) -> codes (N, L) on the plane of the map."""
        return self.mean + points.float() @ self.axes

    def nearest(self, z: torch.Tensor, k: int) -> list[list[tuple[str, float]]]:
        """For each code (N, L), the k map sentences nearest in z, nearest first, with their distances."""
        if k == 0:
            return [[] for _ in range(len(z))]
        distances = torch.cdist(z.float(), self.codes)  # (N, M)
        found = distances.topk(min(k, len(self.texts)), largest=False)
        return [[(self.texts[i], float(d)) for d, i in zip(row_d.tolist(), row_i.tolist())]
                for row_d, row_i in zip(found.values, found.indices)]

    def points(self) -> torch.Tensor:
        return self.project(self.codes)


def corpus_sentences(path: Path, limit: int, seed: int = 0) -> Examples:
    """Up to `limit` lines of a corpus, drawn evenly with `seed` when it has more, with their tunes if labelled."""
    lines = read_lines(path)
    if len(lines) > limit:
        lines = random.Random(seed).sample(lines, limit)
    return examples_of(lines, path)


def build(model: SentenceGenerator, corpus: Path | None, limit: int, seed: int = 0) -> Landscape:
    """The map of a corpus's sentences, or of `limit` samples from the prior (at the default decoding)."""
    if corpus is not None:
        tunes, texts = corpus_sentences(corpus, limit, seed)
        codes = model.encode(texts, tune=tunes if model.labels is not None else None).mu.float().cpu()
        source = "corpus"
    else:
        drawn = model.sample(limit, Strategy(temperature=SAMPLING_TEMPERATURE, top_p=SAMPLING_TOP_P), seed=seed)
        texts, codes, source = [g.text for g in drawn], torch.tensor([g.z for g in drawn]), "prior"
    mean, axes, explained = principal_axes(codes)
    return Landscape(texts, codes, mean, axes, explained, source)


def read_map(path: Path) -> Landscape | None:
    """A map stored in the cache; None for one that cannot be read (it is rebuilt)."""
    try:
        stored = torch.load(path, weights_only=True)
        return Landscape(stored["texts"], stored["codes"], stored["mean"], stored["axes"], stored["explained"],
                         stored["source"])
    except Exception:  # noqa: BLE001 -- a damaged cache entry is rebuilt, never fatal
        return None


def write_map(handle: BinaryIO, landscape: Landscape) -> None:
    torch.save({"texts": landscape.texts, "codes": landscape.codes, "mean": landscape.mean, "axes": landscape.axes,
                "explained": landscape.explained, "source": landscape.source}, handle)


def cached_map(model: SentenceGenerator, checkpoint: Path, corpus: Path | None, limit: int,
               seed: int = 0) -> tuple[Landscape, bool]:
    """The map, read from the cache when this checkpoint, corpus and settings made one before; (map, cached)."""
    files = [hashlib.sha256(path.read_bytes()).digest() if path is not None else b"prior" for path in (checkpoint, corpus)]
    path = cache_dir() / f"map-{cache_key(CACHE_VERSION, str(limit), str(seed), *files)}.pt"
    return cached(path, read_map, lambda: build(model, corpus, limit, seed), write_map)
