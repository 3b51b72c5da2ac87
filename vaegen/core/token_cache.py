"""Token ids of a whole corpus as two flat arrays, built once and memory-mapped on later runs.

Millions of lines as Python lists of ints would take gigabytes. Here every id sits back to back in
one int32 array, with an int64 array of sentence offsets; the pair is written to the cache directory
($VAEGEN_CACHE_DIR, default ~/.cache/vaegen) under a key made of the training lines, the tokenizer
and data.max_length, and read back with np.load(mmap_mode="r"), so a rerun or a resume skips
tokenization and memory stays flat: pages load as batches touch them. An entry is trusted only when
its three files agree (a deleted, truncated or foreign array is rebuilt and rewritten, not a traceback).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vaegen.core.data import truncate
from vaegen.core.files import cache_dir, cache_key, store
from vaegen.core.tokenizer import Tokenizer

CHUNK_LINES = 65_536  # lines tokenized at a time: bounds the Python lists alive at once
CACHE_VERSION = "tokens-1"  # bumped when what an entry holds changes


@dataclass
class TokenArray(Sequence[np.ndarray]):
    """Sentence i is ids[offsets[i]:offsets[i + 1]]."""

    ids: np.ndarray  # (total tokens,) int32
    offsets: np.ndarray  # (sentences + 1,) int64

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, index: int) -> np.ndarray:  # type: ignore[override]  # no slices: one sentence
        return self.ids[self.offsets[index] : self.offsets[index + 1]]

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)


def encode_lines(tokenizer: Tokenizer, lines: list[str], max_length: int) -> tuple[TokenArray, int]:
    """Tokenize in chunks into flat arrays; returns them and how many sentences were truncated."""
    ids, lengths, cut = [], [], 0
    for start in range(0, len(lines), CHUNK_LINES):
        chunk, chunk_cut = truncate(tokenizer.encode(lines[start : start + CHUNK_LINES]), max_length)
        cut += chunk_cut
        lengths.append(np.fromiter(map(len, chunk), dtype=np.int64, count=len(chunk)))
        ids.append(np.fromiter(itertools.chain.from_iterable(chunk), dtype=np.int32))
    offsets = np.zeros(len(lines) + 1, dtype=np.int64)
    np.cumsum(np.concatenate(lengths) if lengths else [], out=offsets[1:])
    return TokenArray(np.concatenate(ids) if ids else np.zeros(0, np.int32), offsets), cut


def read_entry(base: Path, sentences: int) -> tuple[TokenArray, int] | None:
    """The memory-mapped arrays of a cache entry and its truncation count; None when the entry is missing,
    unreadable, or its arrays disagree with its summary (a file deleted, cut short or replaced)."""
    try:
        summary = json.loads(base.with_suffix(".json").read_text())
        arrays = TokenArray(np.load(base.with_suffix(".ids.npy"), mmap_mode="r"),
                            np.load(base.with_suffix(".offsets.npy"), mmap_mode="r"))
        truncated = int(summary["truncated"])
    except (OSError, ValueError, TypeError, KeyError):  # JSON and array-header errors are ValueErrors
        return None
    ids, offsets = arrays.ids, arrays.offsets
    agree = (ids.dtype == np.int32 and offsets.dtype == np.int64 and ids.ndim == offsets.ndim == 1
             and len(arrays) == summary.get("sentences") == sentences and len(offsets) > 0 and offsets[0] == 0
             and int(offsets[-1]) == len(ids) == summary.get("tokens"))
    return (arrays, truncated) if agree else None


def cached_encode(tokenizer: Tokenizer, lines: list[str], corpus_fingerprint: str,
                  max_length: int) -> tuple[TokenArray, int, bool]:
    """The token arrays of `lines`: memory-mapped from the cache when present, else built and cached.

    Returns the arrays, the number of truncated sentences and whether the cache was hit. A cache that
    cannot be written (read-only home, full disk) only costs the reuse: the arrays stay in memory.
    """
    base = cache_dir() / cache_key(CACHE_VERSION, corpus_fingerprint, tokenizer.model_bytes, str(max_length))
    meta = base.with_suffix(".json")  # written last: its presence means the arrays were complete
    cached = read_entry(base, len(lines))
    if cached is not None:
        return cached[0], cached[1], True
    arrays, cut = encode_lines(tokenizer, lines, max_length)
    summary = {"sentences": len(arrays), "tokens": int(arrays.offsets[-1]), "truncated": cut}
    if (store(base.with_suffix(".ids.npy"), lambda handle: np.save(handle, arrays.ids))
            and store(base.with_suffix(".offsets.npy"), lambda handle: np.save(handle, arrays.offsets))):
        store(meta, lambda handle: handle.write(json.dumps(summary).encode()))  # only after both arrays
    return arrays, cut, False
