"""Shared fixtures: small corpora written into tmp_path and one tiny trained checkpoint per session."""

from __future__ import annotations

import itertools
import os
import random
from pathlib import Path

import pytest

from vaegen.core.config import load_config

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "configs" / "tiny.toml"
SONGCI_TRAIN = ROOT / "data" / "songci" / "train.txt"


def english_lines(n: int = 400, seed: int = 0) -> list[str]:
    """Sentences from a small grammar: enough structure for a model to learn in seconds."""
    subjects = ["the cat", "a dog", "my friend", "the old man", "a small bird", "the teacher"]
    verbs = ["sees", "likes", "finds", "follows", "paints", "remembers"]
    objects = ["the river", "a red house", "the morning light", "an open door", "the green hills"]
    endings = ["", " today", " again", " in the rain", " every night"]
    rng = random.Random(seed)
    grid = list(itertools.product(subjects, verbs, objects, endings))
    return [f"{s} {v} {o}{e} ." for s, v, o, e in rng.sample(grid, min(n, len(grid)))]


def chinese_lines(n: int = 400) -> list[str]:
    with SONGCI_TRAIN.open(encoding="utf-8") as handle:
        return [line.strip() for line, _ in zip(handle, range(n))]


@pytest.fixture(scope="session", autouse=True)
def token_cache_in_tmp(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Keep the token-id cache of every test (and of the CLI processes they start) out of ~/.cache."""
    os.environ["VAEGEN_CACHE_DIR"] = str(tmp_path_factory.mktemp("token-cache"))


@pytest.fixture
def english_corpus(tmp_path: Path) -> Path:
    path = tmp_path / "english.txt"
    path.write_text("\n".join(english_lines()) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny English model trained once for the whole session (a few seconds)."""
    import torch

    from vaegen.core.data import split_valid
    from vaegen.train.loop import fit

    out = tmp_path_factory.mktemp("model") / "tiny.pt"
    config = load_config(TINY)
    train, valid = split_valid(english_lines(), config.data.valid_fraction, config.data.min_valid_lines)
    fit(config, train, valid, out, torch.device("cpu"), progress=False, log=lambda _: None)
    return out
