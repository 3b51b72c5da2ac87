"""The models that ship with vaegen, by name: what `--model NAME` and `vaegen models` read.

Each is listed in vaegen/models/models.toml with its checkpoint, the corpus it was trained on and that
corpus's licence notice (which ships beside it), the figures `vaegen eval --json` measured of it on the
corpus's test split, and the map `vaegen serve` shows for it. Nothing here loads a model: a name becomes a
path, which the checkpoint module reads like any other.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from vaegen.core.errors import CheckpointError

MODELS_DIR = Path(__file__).resolve().parents[1] / "models"
MANIFEST = MODELS_DIR / "models.toml"
DEFAULT = "songci-lines"  # what the generation commands use when no model is named or found
DEFAULT_TUNES = "songci-ci"  # the same where a tune is asked for (--tune, `vaegen tunes`)


@dataclass(frozen=True)
class ShippedModel:
    name: str
    file: Path  # the checkpoint
    summary: str  # what it writes, in a few words
    corpus: str
    licence: str
    licence_file: Path
    figures: Path  # `vaegen eval --json` of the checkpoint on its corpus's test split
    map: Path  # the map of `vaegen serve`, made from that test split

    def scores(self) -> dict[str, Any]:
        """The measured figures; empty when the file is missing (a source tree whose model is not built yet)."""
        if not self.figures.is_file():
            return {}
        report: dict[str, Any] = json.loads(self.figures.read_text(encoding="utf-8"))
        return report

    def headline(self) -> str:
        """One line of its test figures: IW-NLL, perplexity, KL, MI and active units."""
        r = self.scores()
        if not r:
            return "not measured"
        return (f"test IW-NLL {r['nll']:.2f} nats (K = {r['iw_samples']:.0f}), perplexity {r['ppl']:.2f} per {r['unit']}, "
                f"KL {r['kl']:.2f}, MI {r['mi']:.2f}, {r['au']:.0f}/{r['latent_dim']:.0f} active units")


@cache
def models() -> dict[str, ShippedModel]:
    """Every model the manifest lists, in its order, with paths inside the package."""
    listed = tomllib.loads(MANIFEST.read_text(encoding="utf-8"))
    return {name: ShippedModel(name=name, file=MODELS_DIR / entry["file"], summary=entry["summary"],
                               corpus=entry["corpus"], licence=entry["licence"],
                               licence_file=MODELS_DIR / entry["licence_file"], figures=MODELS_DIR / entry["figures"],
                               map=MODELS_DIR / entry["map"])
            for name, entry in listed.items()}


def find(name: str) -> ShippedModel:
    """The shipped model of that name, or a one-line refusal that lists the names."""
    try:
        return models()[name]
    except KeyError:
        raise CheckpointError(f"--model {name!r} is not a model that ships with vaegen; choose one of "
                              f"{', '.join(models())} (`vaegen models` lists them)") from None


def named(path: Path) -> ShippedModel | None:
    """The shipped model whose checkpoint is at `path`, if any."""
    return next((m for m in models().values() if m.file == path), None)
