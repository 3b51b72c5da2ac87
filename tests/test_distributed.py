"""`torchrun --nproc_per_node=2` on the CPU (gloo): one checkpoint, identical replicas, the same losses."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import TINY

import vaegen
from vaegen.cli import run
from vaegen.core import checkpoint


def losses(out: Path) -> list[float]:
    records = map(json.loads, out.with_name(out.stem + ".metrics.jsonl").read_text(encoding="utf-8").splitlines())
    return [r["loss"] for r in records if r["kind"] == "train"]


@pytest.mark.slow
def test_two_processes_match_one_with_the_same_global_batch(english_corpus: Path, tmp_path: Path) -> None:
    common = ["train", str(english_corpus), "--config", str(TINY), "--no-progress", "--max-steps", "40",
              "--set", "train.log_every=5"]
    ddp = tmp_path / "ddp.pt"
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                             "-m", "vaegen", *common, "--out", str(ddp)],
                            capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr
    assert "weights identical on all 2 ranks" in result.stderr  # checked by an all_gather of checksums
    assert result.stderr.count("holding out") == 1  # rank 0 alone speaks
    assert len(vaegen.load(ddp, "cpu").sample(3, seed=0)) == 3

    single = tmp_path / "single.pt"
    assert run([*common, "--out", str(single)]) == 0
    together, alone = losses(ddp), losses(single)
    assert len(together) == len(alone) == 8
    # Same data order and global batch; only the random streams (dropout, noise) differ per rank.
    assert all(abs(a - b) / b < 0.05 for a, b in zip(together, alone)), (together, alone)

    resumed = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                              "-m", "vaegen", "train", str(english_corpus), "--out", str(ddp), "--no-progress",
                              "--resume", "--max-steps", "60"], capture_output=True, text=True, timeout=600,
                             check=False)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming at step 40" in resumed.stderr
    assert checkpoint.read(ddp)["train_state"]["step"] == 60
