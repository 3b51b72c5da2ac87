"""Never lose work: exact resume, Ctrl-C / SIGTERM / SIGKILL during real training, non-finite losses."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import TINY, english_lines

from vaegen.cli import run
from vaegen.core import checkpoint
from vaegen.core.config import load_config
from vaegen.core.data import split_valid
from vaegen.core.errors import TrainingError
from vaegen.train import loop as training
from vaegen.train import metrics_log


def train_losses(out: Path) -> list[tuple[int, float]]:
    """The (step, loss) training records of a run's metrics log in the order written, so that a step
    logged twice (a resumed run that redoes steps without rewinding the log) shows."""
    lines = metrics_log.metrics_path(out).read_text(encoding="utf-8").splitlines()
    return [(r["step"], r["loss"]) for r in map(json.loads, lines) if r["kind"] == "train"]


def train_args(corpus: Path, out: Path, *extra: str) -> list[str]:
    return ["train", str(corpus), "--config", str(TINY), "--out", str(out), "--no-progress",
            "--set", "train.log_every=1", "--set", "train.epochs=3", *extra]


def test_interrupted_and_resumed_run_equals_one_uninterrupted_run(english_corpus: Path, tmp_path: Path) -> None:
    # 48 batches per epoch: the break at step 30 falls mid-epoch, the run ends in the second epoch.
    whole, split = tmp_path / "whole.pt", tmp_path / "split.pt"
    assert run(train_args(english_corpus, whole, "--max-steps", "60")) == 0
    assert run(train_args(english_corpus, split, "--max-steps", "30")) == 0
    assert run(["train", str(english_corpus), "--out", str(split), "--no-progress", "--max-steps", "60",
                "--resume"]) == 0
    losses = train_losses(whole)
    assert [step for step, _ in losses] == list(range(1, 61))  # every step logged once, in order
    assert train_losses(split) == losses
    final = [torch.load(p, weights_only=True)["train_state"] for p in (whole, split)]
    assert final[0]["step"] == final[1]["step"] == 60
    for name, tensor in final[0]["resume"]["model"].items():
        assert torch.equal(tensor, final[1]["resume"]["model"][name]), name
    assert torch.equal(final[0]["resume"]["rng"], final[1]["resume"]["rng"])


def test_resume_refuses_other_changes_and_finished_runs(english_corpus: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "m.pt"
    assert run(train_args(english_corpus, out, "--max-steps", "5")) == 0
    before = out.read_bytes()
    base = ["train", str(english_corpus), "--out", str(out), "--no-progress", "--resume"]
    assert run([*base, "--lr", "0.1"]) == 1
    assert "'train.lr' cannot change when resuming" in capsys.readouterr().err
    assert run([*base, "--force"]) == 1
    assert run([*base]) == 1
    assert "is complete" in capsys.readouterr().err
    other = tmp_path / "other.txt"
    other.write_text("\n".join(english_lines(seed=9)), encoding="utf-8")
    assert run(["train", str(other), "--out", str(out), "--no-progress", "--resume", "--max-steps", "9"]) == 1
    assert "training lines differ" in capsys.readouterr().err
    assert out.read_bytes() == before


def long_run(corpus: Path, out: Path, *extra: str) -> subprocess.Popen[str]:
    """A real `vaegen train` that would take minutes, in its own process."""
    args = [sys.executable, "-m", "vaegen", "train", str(corpus), "--config", str(TINY), "--out", str(out),
            "--no-progress", "--set", "train.epochs=500", "--set", "train.log_every=1", *extra]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(condition, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def steps_logged(out: Path) -> int:
    path = metrics_log.metrics_path(out)
    return len(path.read_text(encoding="utf-8").splitlines()) if path.exists() else 0


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_mid_epoch_saves_a_resumable_checkpoint(english_corpus: Path, tmp_path: Path, sig: int) -> None:
    out = tmp_path / "m.pt"
    process = long_run(english_corpus, out)
    wait_for(lambda: steps_logged(out) >= 20)  # well inside the first epoch of 48 steps
    process.send_signal(sig)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130 and "Traceback" not in stderr
    assert "resumable checkpoint written" in stderr and "--resume" in stderr
    state = checkpoint.load(out).train_state
    assert 20 <= state["step"] < 48 and state["position"] == state["step"]
    resumed = subprocess.run([sys.executable, "-m", "vaegen", "train", str(english_corpus), "--out", str(out),
                              "--resume", "--no-progress", "--epochs", "2"], capture_output=True, text=True,
                             timeout=300, check=False)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming at step {state['step']}" in resumed.stderr
    assert checkpoint.load(out).train_state["step"] == 96


@pytest.mark.slow
def test_sigkill_leaves_the_last_periodic_checkpoint_loadable(english_corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "m.pt"
    process = long_run(english_corpus, out, "--set", "train.checkpoint_every=3")
    wait_for(lambda: steps_logged(out) >= 40)
    process.kill()
    process.wait(timeout=30)
    state = checkpoint.load(out).train_state
    assert state["step"] >= 30 and state["step"] % 3 == 0
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] in ([], [f".m.pt.{process.pid}.tmp"])
    assert run(["train", str(english_corpus), "--out", str(out), "--resume", "--no-progress",
                "--max-steps", str(state["step"] + 2)]) == 0


def fit_with_nan_at(step: int, tmp_path: Path, monkeypatch, overrides: list[str]) -> Path:
    """Train in-process, with the loss of one step replaced by NaN."""
    real, calls = training.vae_loss, []

    def poisoned(*args, **kwargs):
        terms = real(*args, **kwargs)
        calls.append(1)
        return terms._replace(loss=terms.loss * float("nan")) if len(calls) == step else terms

    monkeypatch.setattr(training, "vae_loss", poisoned)
    config = load_config(TINY, ["train.checkpoint_every=5", "train.epochs=1", *overrides])
    out = tmp_path / "m.pt"
    train_lines, valid_lines = split_valid(english_lines(), 0.05, 1)
    training.fit(config, train_lines, valid_lines, out, torch.device("cpu"), progress=False, log=lambda _: None)
    return out


def test_nonfinite_loss_stops_naming_the_step_and_saves_the_run_after_the_last_good_step(tmp_path: Path,
                                                                                        monkeypatch) -> None:
    with pytest.raises(TrainingError, match="at step 13;"):
        fit_with_nan_at(13, tmp_path, monkeypatch, [])
    state = checkpoint.load(tmp_path / "m.pt").train_state  # not the periodic checkpoint of step 10
    assert state["step"] == 12 and all(torch.isfinite(t).all() for t in state["resume"]["model"].values())


def test_nonfinite_batches_can_be_skipped_and_counted(tmp_path: Path, monkeypatch) -> None:
    out = fit_with_nan_at(13, tmp_path, monkeypatch, ["train.max_nonfinite_skips=3"])
    state = checkpoint.load(out).train_state
    assert state["skipped"] == 1 and state["epoch"] == 1
    assert all(torch.isfinite(t).all() for t in state["resume"]["model"].values())
