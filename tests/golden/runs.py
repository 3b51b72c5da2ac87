"""The golden record's runs: tiny trainings through the real CLI, one per path the training loop can take.

Each run is reduced to what must not change when the code is reorganised: every training step's loss,
reconstruction, KL and beta, every validation record, and a checksum of the final weights (the best ones
kept for generation and the latest ones kept for resuming). `make_record.py` writes them to
`record.json`; tests/test_golden.py re-runs them and compares.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "configs" / "tiny.toml"
CI_TRAIN = ROOT / "data" / "songci" / "ci.train.tsv"
RECORD = Path(__file__).with_name("record.json")
TRAIN_KEYS = ("step", "epoch", "loss", "rec", "kl", "beta", "encoder_steps")
VALID_KEYS = ("step", "epoch", "rec", "kl", "elbo", "mi", "au")

# name -> extra `vaegen train` arguments on top of the tiny preset (whose anneal schedule is explicit)
RUNS: dict[str, list[str]] = {
    "plain": [],
    "word_dropout_free_bits": ["--set", "train.word_dropout=0.4", "--set", "train.free_bits=0.2"],
    "pretraining": ["--set", "train.epochs=3", "--set", "train.pretrain_epochs=1"],
    "aggressive": ["--set", "train.aggressive_epochs=1", "--max-steps", "24"],
    "refinement": ["--set", "train.refine_epochs=1"],
    "conditional": [],  # on labelled ci, see `corpus`
    "language_model": ["--latent-dim", "0"],
    "resumed": [],  # 9 steps, then --resume to 20: see `run`
    "torchrun": ["--max-steps", "24"],  # two processes, see `run`
}


def english_lines(n: int = 168, seed: int = 0) -> list[str]:
    """Sentences of a small grammar (tests/conftest.py has the same one)."""
    subjects = ["the cat", "a dog", "my friend", "the old man", "a small bird", "the teacher"]
    verbs = ["sees", "likes", "finds", "follows", "paints", "remembers"]
    objects = ["the river", "a red house", "the morning light", "an open door", "the green hills"]
    endings = ["", " today", " again", " in the rain", " every night"]
    grid = list(itertools.product(subjects, verbs, objects, endings))
    return [f"{s} {v} {o}{e} ." for s, v, o, e in random.Random(seed).sample(grid, n)]


def corpus(name: str, folder: Path) -> tuple[Path, list[str]]:
    """The run's corpus file and the config overrides it needs."""
    path = folder / "corpus.txt"
    if name == "conditional":
        with CI_TRAIN.open(encoding="utf-8") as handle:
            path.write_text("".join(line for line, _ in zip(handle, range(120))), encoding="utf-8")
        return path, ["--set", "model.label_dim=4", "--set", "data.max_length=100", "--set",
                      "tokenizer.model_type=char", "--set", "tokenizer.vocab_size=600", "--set", "train.epochs=1"]
    lines = english_lines(169 if name == "torchrun" else 168)  # 169: the last batch of 161 holds one sentence
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path, []


def checksum(weights: dict[str, torch.Tensor]) -> str:
    digest = hashlib.sha256()
    for name in sorted(weights):
        digest.update(name.encode())
        digest.update(weights[name].detach().float().contiguous().numpy().tobytes())
    return digest.hexdigest()


def summary(out: Path) -> dict[str, Any]:
    records = [json.loads(line) for line in out.with_name(out.stem + ".metrics.jsonl").read_text().splitlines()]
    state = torch.load(out, weights_only=True)
    return {
        "train": [{k: r[k] for k in TRAIN_KEYS if k in r} for r in records if r["kind"] == "train"],
        "valid": [{k: r[k] for k in VALID_KEYS} for r in records if r["kind"] == "valid"],
        "steps": state["train_state"]["step"],
        "best_weights": checksum(state["model"]),
        "latest_weights": checksum(state["train_state"]["resume"]["model"]),
    }


def run(name: str, folder: Path) -> dict[str, Any]:
    """Train the named run in `folder` and summarise it."""
    from vaegen.cli import run as cli

    path, data_args = corpus(name, folder)
    out = folder / "run.pt"
    args = ["train", str(path), "--config", str(TINY), "--out", str(out), "--no-progress", "--device", "cpu",
            "--set", "train.log_every=1", *data_args, *RUNS[name]]
    if name == "torchrun":
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                               "-m", "vaegen", *args], capture_output=True, text=True, timeout=600, env=env, check=False)
        assert done.returncode == 0, done.stderr
    elif name == "resumed":
        assert cli([*args, "--max-steps", "9"]) == 0
        assert cli(["train", str(path), "--out", str(out), "--no-progress", "--device", "cpu", "--max-steps", "20",
                    "--resume"]) == 0
    else:
        assert cli(args) == 0, name
    return summary(out)


def host() -> str:
    """The CPU's vector extension as torch sees it: results are bit-exact only between hosts that share it."""
    return torch.backends.cpu.get_cpu_capability()
