"""The real `vaegen` command end to end, and its answers to user errors: one line, no traceback."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import TINY

from vaegen.cli import options, run
from vaegen.core.devices import native_bf16


def vaegen_cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the installed CLI as a user would, in its own process."""
    return subprocess.run([sys.executable, "-m", "vaegen", *args], cwd=cwd, capture_output=True, text=True, check=False,
                          env={**os.environ, **(env or {})}, timeout=300)


def assert_user_error(result: subprocess.CompletedProcess[str] | tuple[int, str], fragment: str) -> None:
    code, stderr = (result.returncode, result.stderr) if isinstance(result, subprocess.CompletedProcess) else result
    assert code != 0
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], stderr


def run_in_process(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = run(list(args))
    return code, capsys.readouterr().err


@pytest.mark.slow
def test_train_sample_interpolate_end_to_end(english_corpus: Path, tmp_path: Path) -> None:
    trained = vaegen_cli("train", str(english_corpus), "--config", str(TINY), "--no-progress", cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr
    assert "holding out 20 of 400 lines" in trained.stderr and "tokenizer: unigram" in trained.stderr
    assert "valid: NLL" in trained.stderr
    assert (tmp_path / "vaegen.pt").is_file() and (tmp_path / "vaegen.metrics.jsonl").is_file()

    sampled = vaegen_cli("sample", "--n", "5", "--seed", "7", cwd=tmp_path)
    assert sampled.returncode == 0, sampled.stderr
    lines = sampled.stdout.splitlines()
    assert len(lines) == 5 and sampled.stdout == vaegen_cli("sample", "--n", "5", "--seed", "7", cwd=tmp_path).stdout
    # an untrained model strings pieces into non-words (about 4% of its words are the corpus's); this one
    # has learned the words (about a third of them, after two epochs of the tiny preset)
    many = vaegen_cli("sample", "--n", "50", "--seed", "7", cwd=tmp_path).stdout.split()
    vocabulary = {word for line in english_corpus.read_text(encoding="utf-8").splitlines() for word in line.split()}
    assert sum(word in vocabulary for word in many) / len(many) > 0.2, many

    walk = vaegen_cli("interpolate", "the cat sees the river .", "a dog paints an open door again .",
                      "--steps", "5", cwd=tmp_path)
    assert walk.returncode == 0, walk.stderr
    assert len(walk.stdout.splitlines()) == 5 and walk.stderr == ""

    unseen = vaegen_cli("interpolate", "", "ΩΩ unseen ΩΩ", cwd=tmp_path)
    assert unseen.returncode == 0 and len(unseen.stdout.splitlines()) == 7
    assert "warning:" in unseen.stderr and "Ω" in unseen.stderr


def test_training_is_deterministic_for_a_seed(english_corpus: Path, tmp_path: Path, capsys) -> None:
    outputs = []
    for name in ("a.pt", "b.pt"):
        out = tmp_path / name
        assert run(["train", str(english_corpus), "--config", str(TINY), "--out", str(out), "--no-progress",
                    "--max-steps", "30", "--seed", "5"]) == 0
        outputs.append(torch.load(out, weights_only=True))
    first, second = (o["model"] for o in outputs)
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert outputs[0]["train_state"]["valid"] == outputs[1]["train_state"]["valid"]


@pytest.mark.skipif(not native_bf16(torch.device("cpu")),
                    reason="this CPU has no native bfloat16 (AVX-512 BF16, AMX or Arm BF16): --precision bf16 is refused")
def test_bf16_training_validates_in_fp32(english_corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "bf16.pt"
    assert run(["train", str(english_corpus), "--config", str(TINY), "--out", str(out), "--no-progress",
                "--max-steps", "20", "--precision", "bf16"]) == 0
    payload = torch.load(out, weights_only=True)
    assert payload["config"]["train"]["precision"] == "bf16"
    assert all(t.dtype == torch.float32 for t in payload["model"].values())


def test_existing_checkpoint_is_not_overwritten(english_corpus: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "vaegen.pt"
    out.write_bytes(b"precious")
    result = run_in_process(capsys, "train", str(english_corpus), "--config", str(TINY), "--out", str(out))
    assert_user_error(result, "already exists; pass --force")
    assert out.read_bytes() == b"precious"


@pytest.mark.parametrize("args, fragment", [
    (["--set", "train.epocs=3"], "unknown key 'train.epocs'"),
    (["--set", "train.lr=-1"], "train.lr must be positive"),
    (["--config", "missing.toml"], "not found"),
    (["--epochs", "0"], "Invalid value for '--epochs'"),
    (["--out", "no/such/dir/m.pt"], "does not exist; create it"),
])
def test_bad_settings_are_refused_before_training(english_corpus: Path, tmp_path: Path, capsys,
                                                  args: list[str], fragment: str) -> None:
    result = run_in_process(capsys, "train", str(english_corpus), "--config", str(TINY), "--out",
                            str(tmp_path / "m.pt"), *args)
    assert_user_error(result, fragment)


def is_ci_line(line: str) -> bool:
    """A line of Song ci: clauses of Chinese characters, each closed by one mark, the last by 。？ or ！."""
    marks = "，。、？！；："
    return (line[-1] in "。？！" and all("\u4e00" <= ch <= "\u9fff" or ch in marks for ch in line)
            and all(clause for clause in re.split(f"[{marks}]", line[:-1])))


def test_without_a_checkpoint_the_bundled_model_writes_ci_lines(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("VAEGEN_CHECKPOINT", raising=False)
    # well-formed lines come from the clause grammar (tests/test_clause_grammar.py); the seed makes them repeat
    result = vaegen_cli("sample", "--n", "10", "--seed", "0", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 10 and all(is_ci_line(line) for line in lines), lines
    assert len(set(lines)) == 10 and result.stdout == vaegen_cli("sample", "--n", "10", "--seed", "0", cwd=tmp_path).stdout
    assert "ships with vaegen" in result.stderr and "vaegen train CORPUS" in result.stderr
    assert len(vaegen_cli("interpolate", "明月几时有", "杨柳岸、晓风残月。", cwd=tmp_path).stdout.splitlines()) == 7


def test_without_a_checkpoint_a_tune_is_written_by_the_bundled_model_of_whole_ci(tmp_path: Path, monkeypatch) -> None:
    from vaegen.songci.forms import form_of

    monkeypatch.delenv("VAEGEN_CHECKPOINT", raising=False)
    tunes = vaegen_cli("tunes", "--top", "3", cwd=tmp_path)
    assert tunes.returncode == 0 and "whole Song ci by tune" in tunes.stderr
    name, count, form, share, forms = tunes.stdout.splitlines()[0].split("\t")
    assert int(count) > 300 and share.endswith("%") and int(forms) >= 1
    result = vaegen_cli("sample", "--tune", name, "--form", "1", "--n", "3", "--rhyme", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert [form_of(line) for line in result.stdout.splitlines()] == [form] * 3


def test_a_missing_named_checkpoint_is_an_error(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    assert_user_error(run_in_process(capsys, "interpolate", "a", "b", "-c", "nope.pt"), "does not exist")
    monkeypatch.setenv("VAEGEN_CHECKPOINT", "gone.pt")
    assert_user_error(run_in_process(capsys, "sample"), "does not exist")


def test_errors_through_a_real_process_have_no_traceback(tmp_path: Path) -> None:
    result = vaegen_cli("train", "missing.txt", cwd=tmp_path)
    assert result.returncode == 1
    assert_user_error(result, "corpus missing.txt does not exist")
    assert vaegen_cli("sample", "--n", "0", cwd=tmp_path).returncode == 2


def test_help_reads_like_documentation(tmp_path: Path) -> None:
    result = vaegen_cli("train", "--help", cwd=tmp_path)
    assert result.returncode == 0
    for option in ("--config", "--set", "--epochs", "--max-steps", "--seed", "--out", "--valid", "--force"):
        assert option in result.stdout


def test_help_does_not_import_torch(tmp_path: Path) -> None:
    probe = "import sys; from vaegen.cli import run; run(['--help']); run(['train', '--help']); print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path, check=False)
    assert result.stdout.strip().endswith("False"), result.stdout + result.stderr


def test_every_choice_the_cli_offers_is_one_the_library_takes() -> None:
    import torch

    from vaegen.cli import options
    from vaegen.core import config
    from vaegen.generate import latent

    for precision in options.Precision:
        assert config.load_config(None, [f"train.precision={precision.value}"]).train.precision == precision.value
    for schedule in options.AnnealSchedule:
        assert config.load_config(None, [f"anneal.schedule={schedule.value}"]).anneal.schedule == schedule.value
    for kind in options.LatentPath:
        assert latent.path(torch.zeros(2), torch.ones(2), 3, kind.value).shape == (3, 2)
    assert len(options.Precision) == 3 and len(options.AnnealSchedule) == 4 and len(options.LatentPath) == 2


@pytest.mark.parametrize("command, default", [("sample", "sample"), ("reconstruct", "greedy"),
                                              ("interpolate", "greedy"), ("complete", "sample")])
def test_every_generation_command_takes_the_shared_options(capsys, command: str, default: str) -> None:
    assert run([command, "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    for option in ("--greedy / --sample", "--temperature", "--top-k", "--top-p", "--beam", "--length-penalty",
                   "--max-length", "--tune", "--rhyme", "--seed", "--json", "--with-z", "--output", "--force",
                   "--checkpoint", "--device"):
        assert option in text, option
    assert f"sample it (with --temperature, --top-k, --top-p). [default: {default}]" in text


@pytest.mark.parametrize("given, temperature, top_p", [
    ({}, options.SAMPLING_TEMPERATURE, options.SAMPLING_TOP_P),  # nothing shapes sampling: the measured default
    ({"top_p": 0.9}, 1.0, 0.9),  # one option given: the others are the model's own distribution
    ({"temperature": 0.7}, 0.7, 1.0),
    ({"top_k": 5}, 1.0, 1.0),
    ({"greedy": True}, 1.0, 1.0),
])
def test_sampling_takes_the_measured_default_only_when_no_option_shapes_it(given: dict, temperature: float,
                                                                          top_p: float) -> None:
    values = {"greedy": False, "temperature": None, "top_k": 0, "top_p": None, "beam": 0, "length_penalty": 1.0,
              "rhyme": False, "grammar": True} | given
    strategy = options.parse_strategy(**values)
    assert (strategy.temperature, strategy.top_p) == (temperature, top_p)
