"""Resuming with the command that started the run: `vaegen train CORPUS --config X ... --resume` continues
the run when X (with --set and the flags) is the run's own config but for how long it trains, and is
refused in one line naming the keys that differ when it is not."""

from __future__ import annotations

from pathlib import Path

import torch
from conftest import TINY
from test_cli import assert_user_error, run_in_process

from vaegen.cli import run
from vaegen.core import checkpoint
from vaegen.core.config import Config, load_config
from vaegen.train.resume import differences


def train_args(corpus: Path, out: Path, *extra: str) -> list[str]:
    return ["train", str(corpus), "--config", str(TINY), "--out", str(out), "--no-progress", *extra]


def test_differences_name_the_keys_a_resumed_run_cannot_change() -> None:
    run_config = load_config(TINY)
    assert differences(run_config, load_config(TINY, ["train.epochs=9", "train.max_steps=40"])) == []
    assert differences(run_config, load_config(TINY, ["model.hidden_dim=16", "anneal.schedule=constant"])) == [
        "model.hidden_dim: 32 in the run, 16 in --config", "anneal.schedule: linear in the run, constant in --config"]
    assert differences(Config(), Config()) == []


def test_the_command_that_started_a_run_plus_resume_continues_it(english_corpus: Path, tmp_path: Path) -> None:
    first, second = tmp_path / "a.pt", tmp_path / "b.pt"
    assert run(train_args(english_corpus, first, "--max-steps", "4", "--seed", "3")) == 0
    second.write_bytes(first.read_bytes())
    assert run(train_args(english_corpus, first, "--max-steps", "8", "--seed", "3", "--resume")) == 0
    assert run(["train", str(english_corpus), "--out", str(second), "--no-progress", "--max-steps", "8",
                "--resume"]) == 0  # the same run, continued with its own saved config
    with_preset, without = (torch.load(path, weights_only=True) for path in (first, second))
    assert with_preset["train_state"]["step"] == without["train_state"]["step"] == 8
    assert with_preset["config"] == without["config"] and with_preset["config"]["train"]["max_steps"] == 8
    assert all(torch.equal(tensor, without["model"][name]) for name, tensor in with_preset["model"].items())


def test_a_config_that_is_not_the_run_s_is_refused_naming_the_keys(english_corpus: Path, tmp_path: Path,
                                                                     capsys) -> None:
    out = tmp_path / "m.pt"
    assert run(train_args(english_corpus, out, "--max-steps", "4")) == 0
    capsys.readouterr()
    before = out.read_bytes()
    result = run_in_process(capsys, *train_args(english_corpus, out, "--max-steps", "8", "--resume",
                                                "--set", "model.hidden_dim=16", "--lr", "0.01"))
    assert_user_error(result, "model.hidden_dim: 32 in the run, 16 in --config; train.lr: 0.003 in the run, "
                              "0.01 in --config")
    preset = tmp_path / "other.toml"
    preset.write_text(TINY.read_text(encoding="utf-8").replace("latent_dim = 8", "latent_dim = 4"), encoding="utf-8")
    result = run_in_process(capsys, "train", str(english_corpus), "--config", str(preset), "--out", str(out),
                            "--no-progress", "--resume", "--max-steps", "8")
    assert_user_error(result, f"--config {preset} does not match the run in {out}: model.latent_dim: 8 in the run, "
                              "4 in --config")
    assert_user_error(run_in_process(capsys, *train_args(english_corpus, out, "--resume", "--force")),
                      "drop one of the two")
    assert out.read_bytes() == before and checkpoint.read(out)["train_state"]["step"] == 4
