"""bf16 where the device has it natively, and only there: `--precision bf16` (or train.precision = bf16
from --set or a preset) elsewhere is refused in one line before any work, since emulated bfloat16 runs
many times slower than fp32; `--precision auto` picks for the device."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import TINY
from test_cli import assert_user_error, run_in_process

from vaegen.cli import run
from vaegen.core import devices


@pytest.fixture
def native(monkeypatch: pytest.MonkeyPatch) -> dict[str, bool]:
    """Whether the device has native bfloat16, as the test sets it (the real answer depends on the CPU)."""
    answer = {"bf16": False}
    monkeypatch.setattr(devices, "native_bf16", lambda device: answer["bf16"])
    return answer


def bf16_preset(tmp_path: Path) -> Path:
    preset = tmp_path / "bf16.toml"
    preset.write_text(TINY.read_text(encoding="utf-8") + 'precision = "bf16"\n', encoding="utf-8")  # [train] is last
    return preset


@pytest.mark.parametrize("asked", ["--precision", "--set", "preset"])
def test_train_refuses_emulated_bf16_before_any_work(english_corpus: Path, tmp_path: Path, capsys, native,
                                                     asked: str) -> None:
    out = tmp_path / "m.pt"
    preset = bf16_preset(tmp_path) if asked == "preset" else TINY
    extra = {"--precision": ["--precision", "bf16"], "--set": ["--set", "train.precision=bf16"], "preset": []}[asked]
    result = run_in_process(capsys, "train", str(english_corpus), "--config", str(preset), "--out", str(out),
                            "--no-progress", *extra)
    assert_user_error(result, "no native bfloat16")  # one line: no tokenizer was trained, no line held out
    assert not out.exists() and not (tmp_path / "m.metrics.jsonl").exists()


def test_a_bf16_run_resumes_only_where_bf16_is_native(english_corpus: Path, tmp_path: Path, capsys, native) -> None:
    out = tmp_path / "m.pt"
    native["bf16"] = True
    args = ["train", str(english_corpus), "--config", str(TINY), "--out", str(out), "--no-progress"]
    assert run([*args, "--precision", "bf16", "--max-steps", "2"]) == 0
    native["bf16"] = False
    capsys.readouterr()
    before = out.read_bytes()
    resume = ["train", str(english_corpus), "--out", str(out), "--no-progress", "--resume", "--max-steps", "4"]
    assert_user_error(run_in_process(capsys, *resume), "no native bfloat16")
    assert out.read_bytes() == before


def test_auto_trains_in_fp32_without_native_bf16(english_corpus: Path, tmp_path: Path, native) -> None:
    weights = []
    for precision in ("auto", "fp32"):
        out = tmp_path / f"{precision}.pt"
        assert run(["train", str(english_corpus), "--config", str(TINY), "--out", str(out), "--no-progress",
                    "--precision", precision, "--max-steps", "3"]) == 0
        weights.append(torch.load(out, weights_only=True)["model"])
    assert all(torch.equal(tensor, weights[1][name]) for name, tensor in weights[0].items())


def test_eval_refuses_emulated_bf16_and_auto_picks_for_the_device(tiny_checkpoint: Path, english_corpus: Path,
                                                                  capsys, native) -> None:
    common = ["eval", str(english_corpus), "-k", "2", "--samples", "4", "--no-progress", "-c", str(tiny_checkpoint)]
    assert_user_error(run_in_process(capsys, *common, "--precision", "bf16"), "no native bfloat16")
    for has_bf16, expected in ((False, "fp32"), (True, "bf16")):
        native["bf16"] = has_bf16
        assert run([*common, "--precision", "auto", "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["precision"] == expected


def test_help_says_where_bf16_runs() -> None:
    from typer.testing import CliRunner

    from vaegen.cli import app

    for command in ("train", "eval"):
        text = " ".join(CliRunner().invoke(app, [command, "--help"]).output.split())
        assert "fp32|bf16|auto" in text and "native" in text and "refused elsewhere" in text
