"""Atomic writes are durable: the file is fsynced before its rename, and its directory after it, so the
rename itself survives a power cut."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import torch
from conftest import english_lines

from vaegen.core import checkpoint
from vaegen.core.config import Config, ModelConfig, TokenizerConfig
from vaegen.core.files import write_atomically
from vaegen.core.model import SentenceVAE
from vaegen.core.tokenizer import Tokenizer


@pytest.fixture
def durability(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """What reaches the disk, in order: ("file", inode) or ("directory", inode) per fsync, ("rename", 0) per
    os.replace."""
    events: list[tuple[str, int]] = []
    fsync, replace = os.fsync, os.replace

    def recording_fsync(fd: int) -> None:
        status = os.fstat(fd)
        events.append(("directory" if stat.S_ISDIR(status.st_mode) else "file", status.st_ino))
        fsync(fd)

    def recording_replace(source: str | Path, target: str | Path) -> None:
        replace(source, target)
        events.append(("rename", 0))

    monkeypatch.setattr(os, "fsync", recording_fsync)
    monkeypatch.setattr(os, "replace", recording_replace)
    return events


def assert_durable(events: list[tuple[str, int]], target: Path) -> None:
    kinds = [kind for kind, _ in events]
    assert kinds == ["file", "rename", "directory"], events
    assert events[-1][1] == target.parent.stat().st_ino  # the directory that holds the target
    assert events[0][1] == target.stat().st_ino  # the file fsynced is the one renamed into place


def test_write_atomically_fsyncs_the_file_then_its_directory_after_the_rename(
        tmp_path: Path, durability: list[tuple[str, int]]) -> None:
    target = tmp_path / "out.txt"
    write_atomically(target, lambda handle: handle.write(b"hello"))
    assert target.read_bytes() == b"hello"
    assert_durable(durability, target)


def test_a_checkpoint_save_reaches_the_directory_too(tmp_path: Path, durability: list[tuple[str, int]]) -> None:
    tokenizer, _ = Tokenizer.train(english_lines(), TokenizerConfig(vocab_size=100))
    config = Config(model=ModelConfig(embed_dim=4, hidden_dim=4, latent_dim=2))
    torch.manual_seed(0)
    model = SentenceVAE(config.model, tokenizer.vocab_size)
    target = tmp_path / "model.pt"
    checkpoint.save(target, config, tokenizer, model.state_dict(), {})
    assert_durable(durability, target)
    assert checkpoint.load(target).config == config
