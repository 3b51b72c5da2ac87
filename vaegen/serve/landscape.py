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

import torch

from vaegen.config import SAMPLING_TEMPERATURE, SAMPLING_TOP_P
from vaegen.data import read_lines, split_labels
from vaegen.decoding import Strategy
from vaegen.files import write_atomically
from vaegen.generator import SentenceGenerator
from vaegen.token_cache import cache_dir

FORMAT = "vaegen-map-1"


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


def principal_axes(codes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, list[float]]:
    """codes (N, L), N >= 2 -> their mean (L,), the two directions of most variance (2, L), and the share of
    the variance along each. With one latent dimension the second axis is zero."""
    mean = codes.mean(dim=0)
    _, singular, vh = torch.linalg.svd(codes - mean, full_matrices=False)
    variance = singular**2
    axes = torch.zeros(2, codes.size(1))
    shares = [0.0, 0.0]
    for i in range(min(2, len(vh))):
        axes[i] = vh[i]
        shares[i] = float(variance[i] / variance.sum()) if variance.sum() > 0 else 0.0
    return mean, axes, shares


def corpus_sentences(path: Path, limit: int, seed: int = 0) -> tuple[list[str], list[str] | None]:
    """Up to `limit` lines of a corpus, drawn evenly with `seed` when it has more: (texts, tunes or None)."""
    lines = read_lines(path)
    if len(lines) > limit:
        lines = random.Random(seed).sample(lines, limit)
    if all("\t" in line for line in lines):
        tunes, texts = split_labels(lines, path)
        return texts, tunes
    return lines, None


def build(model: SentenceGenerator, corpus: Path | None, limit: int, seed: int = 0) -> Landscape:
    """The map of a corpus's sentences, or of `limit` samples from the prior (at the default decoding)."""
    if corpus is not None:
        texts, tunes = corpus_sentences(corpus, limit, seed)
        codes = model.encode(texts, tune=tunes if model.labels is not None else None).mu.float().cpu()
        source = "corpus"
    else:
        drawn = model.sample(limit, Strategy(temperature=SAMPLING_TEMPERATURE, top_p=SAMPLING_TOP_P), seed=seed)
        texts, codes, source = [g.text for g in drawn], torch.tensor([g.z for g in drawn]), "prior"
    mean, axes, explained = principal_axes(codes)
    return Landscape(texts, codes, mean, axes, explained, source)


def cache_key(checkpoint: Path, corpus: Path | None, limit: int, seed: int) -> str:
    digest = hashlib.sha256(f"{FORMAT}:{limit}:{seed}:".encode())
    for path in (checkpoint, corpus):
        digest.update(hashlib.sha256(path.read_bytes()).digest() if path is not None else b"prior")
    return digest.hexdigest()[:32]


def cached(model: SentenceGenerator, checkpoint: Path, corpus: Path | None, limit: int,
           seed: int = 0) -> tuple[Landscape, bool]:
    """The map, read from the cache when this checkpoint, corpus and settings made one before; (map, cached)."""
    path = cache_dir() / f"map-{cache_key(checkpoint, corpus, limit, seed)}.pt"
    if path.exists():
        try:
            stored = torch.load(path, weights_only=True)
            return Landscape(stored["texts"], stored["codes"], stored["mean"], stored["axes"],
                             stored["explained"], stored["source"]), True
        except Exception:  # noqa: BLE001 -- a damaged cache entry is rebuilt, never fatal
            path.unlink(missing_ok=True)
    landscape = build(model, corpus, limit, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"texts": landscape.texts, "codes": landscape.codes, "mean": landscape.mean, "axes": landscape.axes,
               "explained": landscape.explained, "source": landscape.source}
    write_atomically(path, lambda handle: torch.save(payload, handle))
    return landscape, False
