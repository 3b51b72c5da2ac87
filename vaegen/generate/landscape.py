"""The map of a latent space: sentences with their codes, laid out on the plane twice, by their neighbours in z
(`projection`) and on the codes' two principal axes, where every point lifts back to a code; and the file that
keeps it, which `vaegen map` writes for a model that ships with vaegen and `vaegen serve` caches for the others.

The sentences are a corpus's (their posterior means) or, without one, samples from the prior (the codes they
were decoded from). Building is slow: every sentence is encoded or decoded (decoding 1,000 took 406 s on two busy
cores), then the codes are laid out (10-40 s for 1,000-2,000 sentences). `build` reports its progress after each
chunk of sentences, so that a caller can show it, and stops where that report raises.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, NamedTuple

import torch

from vaegen.core.config import SAMPLING_TEMPERATURE, SAMPLING_TOP_P
from vaegen.core.data import Examples, examples_of, read_lines
from vaegen.core.metrics import principal_axes
from vaegen.generate.decoding import Strategy
from vaegen.generate.generator import SentenceGenerator
from vaegen.generate.projection import NEIGHBOURS, neighbour_layout, neighbour_preservation, place

FORMAT = 2  # what a map file holds; a file of another format is not read
# Sentences per model call while building: progress, and a stop, come between calls. Encoding 64 at a time is twice
# as fast as 16 at a time; a decoding takes longer (0.4 s a sentence on two busy cores), so its chunks are smaller.
ENCODE_CHUNK, DECODE_CHUNK = 64, 16
PRIOR_STRATEGY = Strategy(temperature=SAMPLING_TEMPERATURE, top_p=SAMPLING_TOP_P)  # `vaegen sample`'s default

Progress = Callable[[str, int, int], None]  # (stage, done, total) after each chunk; raising stops the build


def quiet(stage: str, done: int, total: int) -> None:
    """A build's progress, untold."""


@dataclass
class Landscape:
    texts: list[str]
    tunes: list[str] | None  # each sentence's tune: a corpus of 'tune<TAB>text' lines, or samples of a model of tunes
    codes: torch.Tensor  # (N, L) the sentences' codes
    layout: torch.Tensor  # (N, 2) their places by neighbours
    source: str  # "corpus" or "prior"
    checkpoint: str = ""  # the fingerprint of the checkpoint whose codes these are ("": unknown)
    mean: torch.Tensor = field(init=False)  # (L,)
    axes: torch.Tensor = field(init=False)  # (2, L) orthonormal: the codes' first two principal directions
    explained: list[float] = field(init=False)  # the share of the codes' variance along each axis
    kept: dict[str, float] = field(init=False)  # neighbour preservation on each layout: "neighbours" and "axes"

    def __post_init__(self) -> None:
        self.mean, self.axes, self.explained = principal_axes(self.codes)
        self.kept = {"neighbours": neighbour_preservation(self.codes, self.layout),
                     "axes": neighbour_preservation(self.codes, self.points())}

    def project(self, z: torch.Tensor) -> torch.Tensor:
        """Codes (N, L) -> points (N, 2) on the principal axes."""
        return (z.float() - self.mean) @ self.axes.T

    def lift(self, points: torch.Tensor) -> torch.Tensor:
        """Points (N, 2) on the principal axes -> codes (N, L) on their plane."""
        return self.mean + points.float() @ self.axes

    def points(self) -> torch.Tensor:
        """The map's sentences on the principal axes (N, 2)."""
        return self.project(self.codes)

    def place(self, z: torch.Tensor) -> torch.Tensor:
        """Codes (N, L) -> places (N, 2) on the neighbour layout, among their nearest map sentences."""
        return place(z, self.codes, self.layout)

    def headline(self) -> str:
        """What the map holds and how well each layout keeps neighbours, in one line."""
        return (f"{len(self.texts):,} {self.source} sentences; of each one's {NEIGHBOURS} nearest in z, "
                f"{self.kept['neighbours']:.2f} are among its {NEIGHBOURS} nearest on the neighbour layout, "
                f"{self.kept['axes']:.2f} on the principal axes")

    def nearest(self, z: torch.Tensor, k: int) -> list[list[tuple[str, float]]]:
        """For each code (N, L), the k map sentences nearest in z, nearest first, with their distances."""
        if k == 0:
            return [[] for _ in range(len(z))]
        distances = torch.cdist(z.float(), self.codes)  # (N, M)
        found = distances.topk(min(k, len(self.texts)), largest=False)
        return [[(self.texts[i], float(d)) for d, i in zip(row_d.tolist(), row_i.tolist())]
                for row_d, row_i in zip(found.values, found.indices)]


def fingerprint(checkpoint: Path) -> str:
    """What ties a map to the checkpoint whose codes it holds: the hash of the file."""
    return hashlib.sha256(checkpoint.read_bytes()).hexdigest()


def corpus_sentences(path: Path, limit: int, seed: int = 0) -> Examples:
    """Up to `limit` lines of a corpus, drawn evenly with `seed` when it has more, with their tunes if labelled."""
    lines = read_lines(path)
    if len(lines) > limit:
        lines = random.Random(seed).sample(lines, limit)
    return examples_of(lines, path)


class Sentences(NamedTuple):
    """A map's sentences before they are laid out."""

    texts: list[str]
    tunes: list[str] | None
    codes: torch.Tensor  # (N, L)


def of_corpus(model: SentenceGenerator, path: Path, limit: int, seed: int, progress: Progress) -> Sentences:
    """Up to `limit` of a corpus's sentences with their posterior means, encoded a chunk at a time."""
    tunes, texts = corpus_sentences(path, limit, seed)
    codes = []
    for start in range(0, len(texts), ENCODE_CHUNK):
        chunk = texts[start:start + ENCODE_CHUNK]
        labels = tunes[start:start + ENCODE_CHUNK] if tunes is not None and model.labels is not None else None
        codes.append(model.encode(chunk, tune=labels).mu.float().cpu())
        progress("encoding", start + len(chunk), len(texts))
    return Sentences(texts, tunes, torch.cat(codes))


def of_prior(model: SentenceGenerator, limit: int, seed: int, progress: Progress) -> Sentences:
    """`limit` sentences decoded from the prior a chunk at a time (each chunk with its own seed), with their codes."""
    drawn = []
    for start in range(0, limit, DECODE_CHUNK):
        drawn += model.sample(min(DECODE_CHUNK, limit - start), PRIOR_STRATEGY, seed=seed + start)
        progress("decoding", len(drawn), limit)
    tunes = [g.tune or "" for g in drawn] if model.labels is not None else None
    return Sentences([g.text for g in drawn], tunes, torch.tensor([g.z for g in drawn]))


def build(model: SentenceGenerator, corpus: Path | None, limit: int, *, checkpoint: str = "", seed: int = 0,
          progress: Progress = quiet) -> Landscape:
    """The map of up to `limit` of a corpus's sentences, or of `limit` samples from the prior, laid out;
    `checkpoint` is the fingerprint of the model's file, which the map keeps."""
    if corpus is None:
        drawn = of_prior(model, limit, seed, progress)
    else:
        drawn = of_corpus(model, corpus, limit, seed, progress)
    codes = drawn.codes.half().float()  # as the file keeps them, so that a map read back is the map built
    progress("laying out", len(codes), len(codes))
    layout = neighbour_layout(codes, seed)
    return Landscape(drawn.texts, drawn.tunes, codes, layout, "prior" if corpus is None else "corpus", checkpoint)


def read(path: Path) -> Landscape | None:
    """A map file; None for one that cannot be read or is of another format."""
    try:
        stored = torch.load(path, weights_only=True)
        if stored.get("format") != FORMAT:
            return None
        return Landscape(stored["texts"], stored["tunes"], stored["codes"].float(), stored["layout"].float(),
                         stored["source"], stored["checkpoint"])
    except Exception:  # noqa: BLE001 -- a damaged or foreign file is not a map: the caller builds one or says so
        return None


def write(handle: BinaryIO, landscape: Landscape) -> None:
    """A map as its file keeps it: codes in float16 (a few hundred KB for a thousand sentences); what is derived
    from them (principal axes, neighbours kept) is derived again when it is read."""
    torch.save({"format": FORMAT, "texts": landscape.texts, "tunes": landscape.tunes,
                "codes": landscape.codes.half(), "layout": landscape.layout, "source": landscape.source,
                "checkpoint": landscape.checkpoint}, handle)
