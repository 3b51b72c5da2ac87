"""Every broken or hostile input the issue lists, through the CLI: one line, non-zero, nothing touched."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest
import torch
from conftest import TINY
from test_cli import assert_user_error, run_in_process

from vaegen.cli import run
from vaegen.core import checkpoint


def snapshot(directory: Path) -> dict[str, tuple[bytes, int]]:
    """Contents and modification times of every file under `directory`."""
    return {str(p): (p.read_bytes(), p.stat().st_mtime_ns) for p in directory.rglob("*") if p.is_file()}


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A directory holding files the user cares about; each test checks they are untouched."""
    (tmp_path / "vaegen.pt").write_bytes(b"an earlier checkpoint")
    (tmp_path / "vaegen.metrics.jsonl").write_text('{"kind": "valid"}\n', encoding="utf-8")
    (tmp_path / "notes.txt").write_text("keep\n", encoding="utf-8")
    return tmp_path


def unreadable(tmp_path: Path) -> Path:
    """A file that exists but cannot be read: chmod 000, or for root (who reads anything) /proc/self/mem."""
    if os.geteuid() == 0:
        return Path("/proc/self/mem")
    path = tmp_path / "locked.txt"
    path.write_text("secret\n", encoding="utf-8")
    path.chmod(0)
    return path


CORPORA = {
    "missing": (None, "does not exist"),
    "empty": (b"", "no text"),
    "blank lines only": (b"\n  \n\t\n\r\n", "no text"),
    "too few lines for validation": (b"one line only\n", "too few to hold out"),
    "invalid UTF-8": (b"fine\nstill fine\nbad \xff byte\n", "not valid UTF-8 (line 3)"),
    "binary": (bytes(range(256)) * 4, "NUL byte"),
    "NUL bytes in text": (b"text\nmore\x00text\n", "NUL byte on line 2"),
    "enormous single line": (b"word " * 40_000, "more than data.max_line_chars"),
}


@pytest.mark.parametrize("name", CORPORA)
def test_bad_corpus(workdir: Path, capsys, monkeypatch, name: str) -> None:
    content, fragment = CORPORA[name]
    corpus = workdir / "corpus.txt"
    if content is not None:
        corpus.write_bytes(content)
    before = snapshot(workdir)
    monkeypatch.chdir(workdir)
    assert_user_error(run_in_process(capsys, "train", str(corpus), "--config", str(TINY), "--out", "new.pt"), fragment)
    assert snapshot(workdir) == before


def test_corpus_that_is_a_directory_or_unreadable(workdir: Path, capsys) -> None:
    before = snapshot(workdir)
    out = str(workdir / "new.pt")
    assert_user_error(run_in_process(capsys, "train", str(workdir), "--out", out), "is a directory")
    assert_user_error(run_in_process(capsys, "train", str(unreadable(workdir)), "--out", out), "cannot read corpus")
    assert snapshot(workdir) == before


def test_invalid_utf8_can_be_replaced_as_documented(tmp_path: Path, capsys) -> None:
    lines = [f"line {i} about the river" for i in range(60)] + ["bad \xff byte"]
    corpus = tmp_path / "corpus.txt"
    corpus.write_bytes("\n".join(lines).encode("utf-8").replace("\xff".encode(), b"\xff"))
    args = ["train", str(corpus), "--config", str(TINY), "--out", str(tmp_path / "m.pt"), "--no-progress",
            "--max-steps", "2"]
    assert run_in_process(capsys, *args)[0] == 1
    assert run_in_process(capsys, *args, "--replace-bad-bytes")[0] == 0


@pytest.mark.parametrize("content, fragment", [
    ("[train]\nepochs = \n", "is not valid TOML"),
    ("[train]\nepoch = 3\n", "unknown key 'train.epoch'"),
    ("[trainer]\nepochs = 3\n", "unknown section 'trainer'"),
    ("[train]\nepochs = 'three'\n", "'train.epochs' must be int"),
    ("[train]\nbatch_size = 0\n", "train.batch_size must be at least 1"),
    ("[anneal]\nschedule = 'sigmoid'\n", "anneal.schedule must be one of"),
])
def test_bad_config_file(workdir: Path, english_corpus: Path, capsys, content: str, fragment: str) -> None:
    preset = workdir / "preset.toml"
    preset.write_text(content, encoding="utf-8")
    before = snapshot(workdir)
    result = run_in_process(capsys, "train", str(english_corpus), "--config", str(preset), "--out",
                            str(workdir / "vaegen.pt"), "--force")
    assert_user_error(result, fragment)
    assert snapshot(workdir) == before


@pytest.mark.parametrize("args, fragment", [
    (["sample", "--n", "0"], "'--n'"),
    (["sample", "--n", "-1"], "'--n'"),
    (["sample", "--n", "10000000000"], "'--n'"),
    (["sample", "--n", "ten"], "'--n'"),
    (["interpolate", "a", "b", "--steps", "0"], "'--steps'"),
    (["interpolate", "a", "b", "--steps", "-4"], "'--steps'"),
    (["interpolate", "a", "b", "--steps", "1000000"], "'--steps'"),
    (["sample", "--temperature", "-1"], "'--temperature'"),
    (["sample", "--device", "tpu"], "unknown device"),
    (["sample", "--top-p", "0"], "'--top-p'"),
    (["sample", "--top-k", "-2"], "'--top-k'"),
    (["sample", "--beam", "-1"], "'--beam'"),
    (["sample", "--greedy", "--temperature", "0.5"], "shape sampling"),
    (["reconstruct", "--beam", "3", "--top-p", "0.9"], "drop --beam"),
    (["interpolate", "a"], "add --random"),
    (["interpolate", "a", "b", "--path", "curved"], "'--path'"),
    (["reconstruct"], "as arguments or with --input"),
    (["encode", "a", "--input", "lines.txt"], "one of the two"),
    (["complete", "   "], "the prefix is empty"),
])
def test_bad_generation_flags(tiny_checkpoint: Path, capsys, args: list[str], fragment: str) -> None:
    assert_user_error(run_in_process(capsys, *args, "-c", str(tiny_checkpoint)), fragment)


def test_interpolate_tolerates_empty_and_unseen_text(tiny_checkpoint: Path, capsys) -> None:
    assert run(["interpolate", "", "☃☃ ünseen Ωmega", "--steps", "3", "-c", str(tiny_checkpoint)]) == 0
    captured = capsys.readouterr()
    assert len(captured.out.splitlines()) == 3
    assert "warning:" in captured.err and "☃" in captured.err


class RunsCode:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def bad_checkpoints(directory: Path, good: Path) -> dict[str, tuple[Path, str]]:
    payload = torch.load(good, weights_only=True)
    files = {
        "truncated": good.read_bytes()[: good.stat().st_size // 2],
        "random bytes": os.urandom(10_000),
        "pickle carrying code": pickle.dumps(RunsCode()),
    }
    cases = {}
    for name, data in files.items():
        path = directory / f"{name.replace(' ', '_')}.pt"
        path.write_bytes(data)
        cases[name] = path
    torch.save({**payload, "version": checkpoint.VERSION + 1}, directory / "future.pt")
    torch.save(torch.nn.GRU(4, 4).state_dict(), directory / "state_dict.pt")
    torch.save({"format": checkpoint.FORMAT, "version": 1, "x": RunsCode()}, directory / "evil.pt")
    return {
        "missing": (directory / "missing.pt", "does not exist"),
        "directory": (directory, "is a directory"),
        "truncated": (cases["truncated"], "truncated or damaged"),
        "random bytes": (cases["random bytes"], "not a readable vaegen checkpoint"),
        "pickle carrying code": (cases["pickle carrying code"], "would run code"),
        "torch file carrying code": (directory / "evil.pt", "would run code"),
        "future version": (directory / "future.pt", "newer than this vaegen reads"),
        "plain state_dict": (directory / "state_dict.pt", "not a vaegen checkpoint"),
    }


@pytest.mark.parametrize("command", [["sample"], ["interpolate", "a", "b"]])
def test_bad_checkpoints(tiny_checkpoint: Path, tmp_path: Path, capsys, monkeypatch, command: list[str]) -> None:
    monkeypatch.chdir(tmp_path)
    cases = bad_checkpoints(tmp_path, tiny_checkpoint)
    before = snapshot(tmp_path)
    for path, fragment in cases.values():
        assert_user_error(run_in_process(capsys, *command, "--checkpoint", str(path)), fragment)
    assert snapshot(tmp_path) == before and not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("out, fragment", [
    ("missing/dir/m.pt", "does not exist; create it"),
    ("/proc/m.pt", "cannot write in /proc"),  # a read-only directory, even for root
])
def test_output_path_refused_before_training(workdir: Path, english_corpus: Path, capsys, out: str,
                                             fragment: str) -> None:
    before = snapshot(workdir)
    result = run_in_process(capsys, "train", str(english_corpus), "--config", str(TINY), "--out", out)
    assert_user_error(result, fragment)
    assert snapshot(workdir) == before


def test_read_only_directory_for_ordinary_users(tmp_path: Path, english_corpus: Path, capsys) -> None:
    if os.geteuid() == 0:
        pytest.skip("root writes into read-only directories; /proc covers this case above")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    result = run_in_process(capsys, "train", str(english_corpus), "--config", str(TINY), "--out", str(locked / "m.pt"))
    assert_user_error(result, "cannot write in")
