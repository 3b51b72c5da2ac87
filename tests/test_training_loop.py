"""The training loop's bookkeeping: validations, checkpoints on their intervals and on failure, the metrics log,
the validation lines' fingerprint, each rank's share of a batch, and schedules that scale with the run."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from conftest import TINY, english_lines

from vaegen.core import checkpoint
from vaegen.core.config import load_config
from vaegen.core.data import split_valid
from vaegen.core.errors import TrainingError
from vaegen.train import distributed, metrics_log
from vaegen.train import loop as training

TRAIN, VALID = split_valid(english_lines(), 0.05, 1)  # 380 training lines: 48 batches of 8 an epoch


def fit(out: Path, overrides: list[str], valid: list[str] = VALID, resume: bool = False) -> training.TrainResult:
    config = load_config(TINY, ["train.log_every=1", "train.checkpoint_minutes=0", *overrides])
    payload = checkpoint.read(out) if resume else None
    return training.fit(config, TRAIN, valid, out, torch.device("cpu"), resume=payload, progress=False,
                        log=lambda _: None)


def records(out: Path, kind: str) -> list[dict]:
    return [r for r in metrics_log.read(metrics_log.metrics_path(out)) if r["kind"] == kind]


def test_validation_runs_at_every_eval_every_and_once_when_the_last_step_lands_on_it(tmp_path: Path) -> None:
    out = tmp_path / "m.pt"
    fit(out, ["train.eval_every=5", "train.max_steps=10"])
    assert [r["step"] for r in records(out, "valid")] == [5, 10]
    fit(tmp_path / "e.pt", ["train.eval_every=20", "train.epochs=1"])
    assert [r["step"] for r in records(tmp_path / "e.pt", "valid")] == [20, 40, 48]  # and the epoch's end


def test_checkpoint_minutes_writes_between_validations_and_zero_turns_it_off(tmp_path: Path, monkeypatch) -> None:
    saves: list[int] = []
    real = checkpoint.save

    def counted(*args, **kwargs) -> None:
        saves.append(1)
        real(*args, **kwargs)

    monkeypatch.setattr(checkpoint, "save", counted)
    fit(tmp_path / "off.pt", ["train.max_steps=12"])
    assert len(saves) == 1  # the validation at the end alone
    saves.clear()
    fit(tmp_path / "on.pt", ["train.max_steps=12", "train.checkpoint_minutes=0.0000001"])
    assert len(saves) == 13  # every step is past the interval, then the validation at the end


def test_resume_refuses_other_validation_lines(tmp_path: Path) -> None:
    out = tmp_path / "m.pt"
    fit(out, ["train.max_steps=3"])
    with pytest.raises(TrainingError, match="validation lines differ"):
        fit(out, ["train.max_steps=6"], valid=VALID[:-1], resume=True)
    assert fit(out, ["train.max_steps=6"], resume=True).steps == 6


def test_a_torn_metrics_line_does_not_stop_a_resume_and_the_rewind_drops_it(tmp_path: Path) -> None:
    out = tmp_path / "m.pt"
    fit(out, ["train.max_steps=4"])
    log = metrics_log.metrics_path(out)
    with log.open("a", encoding="utf-8") as handle:  # a kill -9 in the middle of writing step 5's record
        handle.write('{"kind": "train", "step": 5, "lo')
    fit(out, ["train.max_steps=6"], resume=True)
    steps = [r["step"] for r in records(out, "train")]
    assert steps == [1, 2, 3, 4, 5, 6]
    assert all(json.loads(line) for line in log.read_text(encoding="utf-8").splitlines())


def test_the_rewind_replaces_the_log_atomically(tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "m.pt"
    log = metrics_log.metrics_path(out)
    log.write_text("".join(json.dumps({"kind": "train", "step": s}) + "\n" for s in range(1, 6)), encoding="utf-8")
    before = log.read_bytes()

    def crash(*args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        metrics_log.rewind(out, 2)
    assert log.read_bytes() == before  # a failed rewind leaves the whole log, never half of it
    monkeypatch.undo()
    metrics_log.rewind(out, 2)
    assert [r["step"] for r in metrics_log.read(log)] == [1, 2]


def test_any_failure_in_the_loop_saves_a_resumable_checkpoint(tmp_path: Path, monkeypatch) -> None:
    real, calls = torch.nn.utils.clip_grad_norm_, []

    def out_of_memory(*args, **kwargs):
        calls.append(1)
        if len(calls) == 7:
            raise MemoryError("out of memory")
        return real(*args, **kwargs)

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", out_of_memory)
    out = tmp_path / "m.pt"
    with pytest.raises(MemoryError):
        fit(out, ["train.epochs=1"])
    assert checkpoint.load(out).train_state["step"] == 6  # six steps done, the seventh failed before its update
    monkeypatch.undo()
    assert fit(out, ["train.epochs=1"], resume=True).steps == 48


@pytest.mark.parametrize("batch", [[0, 1, 2, 3], [0, 1, 2], [7]])
def test_ranks_share_a_batch_without_duplicates_and_weigh_it_to_its_mean(batch: list[int]) -> None:
    parts = [distributed.share(batch, rank, 2) for rank in range(2)]
    counted = [i for part, weight in parts if weight for i in part]
    assert sorted(counted) == batch  # every example once: none left out, none twice
    loss = {i: float(i + 1) for i in batch}  # a loss per example
    # DDP averages over ranks: each rank's weight * its mean loss, averaged, is the mean over the whole batch
    averaged = sum(weight * sum(loss[i] for i in part) / len(part) for part, weight in parts) / 2
    assert averaged == pytest.approx(sum(loss.values()) / len(batch))
    assert all(part for part, _ in parts)  # a rank without an example still runs one (at weight 0)


def test_an_unset_logistic_midpoint_falls_at_a_quarter_of_the_run(tmp_path: Path) -> None:
    out = tmp_path / "m.pt"
    fit(out, ["anneal.schedule=logistic", "train.epochs=1"])  # 48 steps: the midpoint is step 12
    beta = {r["step"]: r["beta"] for r in records(out, "train")}
    assert beta[13] == 0.5  # the record of step 13 carries the beta of the step after 12 done
    assert beta[1] < 0.5 < beta[48]
