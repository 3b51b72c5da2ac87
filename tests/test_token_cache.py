"""Flat token arrays and their on-disk cache: same ids as the tokenizer, reused, keyed, optional."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import english_lines

from vaegen.core.config import TokenizerConfig
from vaegen.core.data import truncate
from vaegen.core.token_cache import CHUNK_LINES, cached_encode, encode_lines
from vaegen.core.tokenizer import Tokenizer


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    return Tokenizer.train(english_lines(), TokenizerConfig(vocab_size=100))[0]


def test_arrays_hold_the_tokenizers_ids(tokenizer: Tokenizer, monkeypatch) -> None:
    monkeypatch.setattr("vaegen.core.token_cache.CHUNK_LINES", 7)  # several chunks, one of them partial
    lines = english_lines(50)
    expected, cut = truncate(tokenizer.encode(lines), 6)
    arrays, arrays_cut = encode_lines(tokenizer, lines, 6)
    assert arrays_cut == cut > 0 and len(arrays) == 50
    assert [arrays[i].tolist() for i in range(50)] == expected
    assert arrays.lengths.tolist() == [len(s) for s in expected] and arrays.ids.dtype == np.int32
    assert CHUNK_LINES > 7


def test_cache_is_built_once_then_memory_mapped(tokenizer: Tokenizer, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("VAEGEN_CACHE_DIR", str(tmp_path))
    lines = english_lines(80)
    built, cut, hit = cached_encode(tokenizer, lines, "corpus-a", 32)
    assert not hit and len(list(tmp_path.glob("*.json"))) == 1
    again, cut_again, hit_again = cached_encode(tokenizer, lines, "corpus-a", 32)
    assert hit_again and cut_again == cut and isinstance(again.ids, np.memmap)
    assert np.array_equal(again.ids, built.ids) and np.array_equal(again.offsets, built.offsets)
    assert not cached_encode(tokenizer, lines, "corpus-b", 32)[2]  # another corpus, another entry
    assert not cached_encode(tokenizer, lines, "corpus-a", 8)[2]  # another max_length too
    assert not list(tmp_path.glob(".*.tmp"))


def test_unwritable_cache_only_costs_the_reuse(tokenizer: Tokenizer, tmp_path: Path, monkeypatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory", encoding="utf-8")
    monkeypatch.setenv("VAEGEN_CACHE_DIR", str(blocker / "cache"))
    arrays, _, hit = cached_encode(tokenizer, english_lines(20), "corpus", 32)
    assert not hit and len(arrays) == 20


def _delete(path: Path) -> None:
    path.unlink()


def _cut_short(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-40])


def _replace_by_another_array(path: Path) -> None:
    np.save(path, np.arange(5, dtype=np.load(path).dtype))


@pytest.mark.parametrize(("suffix", "damage"), [
    (".ids.npy", _delete), (".offsets.npy", _delete), (".ids.npy", _cut_short), (".offsets.npy", _cut_short),
    (".offsets.npy", _replace_by_another_array),
])
def test_a_damaged_entry_is_rebuilt_and_rewritten(tokenizer: Tokenizer, tmp_path: Path, monkeypatch,
                                                  suffix: str, damage) -> None:
    monkeypatch.setenv("VAEGEN_CACHE_DIR", str(tmp_path))
    lines = english_lines(80)
    built, cut, _ = cached_encode(tokenizer, lines, "corpus", 32)
    (entry,) = tmp_path.glob("*.json")
    damage(entry.with_name(entry.name.removesuffix(".json") + suffix))
    rebuilt, cut_again, hit = cached_encode(tokenizer, lines, "corpus", 32)
    assert not hit and cut_again == cut
    assert np.array_equal(rebuilt.ids, built.ids) and np.array_equal(rebuilt.offsets, built.offsets)
    again, _, hit_again = cached_encode(tokenizer, lines, "corpus", 32)  # the entry was written anew
    assert hit_again and np.array_equal(again.ids, built.ids) and np.array_equal(again.offsets, built.offsets)
