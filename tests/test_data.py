"""Corpus reading, the validation split and length-grouped batches."""

from pathlib import Path

import pytest

from vaegen.core.data import collate, epoch_batches, read_lines, split_valid, truncate
from vaegen.core.errors import CorpusError
from vaegen.core.tokenizer import BOS_ID, EOS_ID, PAD_ID


def test_read_lines_skips_blanks_and_accepts_crlf(tmp_path: Path) -> None:
    path = tmp_path / "c.txt"
    path.write_bytes(b"one line\r\n\r\n  \r\nsecond\ttwo \r\nthird")
    assert read_lines(path) == ["one line", "second\ttwo", "third"]


@pytest.mark.parametrize("content, fragment", [
    (b"", "no text"),
    (b"\n \n\r\n", "no text"),
    (b"ok\nfine\n\xff\xfe bad\n", "not valid UTF-8 \\(line 3\\)"),
    (b"ok\nbin\x00ary\n", "NUL byte on line 2"),
])
def test_read_lines_refuses_bad_files(tmp_path: Path, content: bytes, fragment: str) -> None:
    path = tmp_path / "c.txt"
    path.write_bytes(content)
    with pytest.raises(CorpusError, match=fragment):
        read_lines(path)


def test_read_lines_refuses_missing_and_directories(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="does not exist"):
        read_lines(tmp_path / "nope.txt")
    with pytest.raises(CorpusError, match="is a directory"):
        read_lines(tmp_path)


def test_split_valid_is_deterministic_and_disjoint() -> None:
    lines = [f"line {i}" for i in range(100)]
    train, valid = split_valid(lines, 0.1, 1)
    assert valid == [f"line {i}" for i in range(9, 100, 10)]
    assert len(train) == 90 and not set(train) & set(valid)
    assert split_valid(lines, 0.1, 1) == (train, valid)


def test_split_valid_refuses_tiny_corpora() -> None:
    with pytest.raises(CorpusError, match="too few"):
        split_valid(["only one"], 0.05, 1)
    with pytest.raises(CorpusError, match="too few"):
        split_valid([f"{i}" for i in range(30)], 0.05, 5)


def test_truncate_counts_cut_sentences() -> None:
    assert truncate([[1] * 5, [1] * 2, [1] * 9], 4) == ([[1] * 4, [1] * 2, [1] * 4], 2)


def test_collate_appends_eos_and_pads() -> None:
    batch = collate([[5, 6, 7], [8]])
    assert batch.tokens.tolist() == [[5, 6, 7, EOS_ID], [8, EOS_ID, PAD_ID, PAD_ID]]
    assert batch.lengths.tolist() == [4, 2]
    assert batch.decoder_inputs.tolist() == [[BOS_ID, 5, 6, 7], [BOS_ID, 8, EOS_ID, PAD_ID]]


def test_epoch_batches_cover_everything_group_lengths_and_depend_on_seed() -> None:
    lengths = [(i * 7) % 23 + 1 for i in range(500)]
    batches = epoch_batches(lengths, 16, seed=3, epoch=0)
    assert sorted(i for b in batches for i in b) == list(range(500))
    spreads = [max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches]
    assert sum(spreads) / len(spreads) <= 1.0  # length grouping keeps padding small
    assert batches == epoch_batches(lengths, 16, seed=3, epoch=0)
    assert batches != epoch_batches(lengths, 16, seed=3, epoch=1)
    assert batches != epoch_batches(lengths, 16, seed=4, epoch=0)
