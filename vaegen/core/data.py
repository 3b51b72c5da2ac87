"""Corpus reading, the held-out split, and length-grouped batches of token ids.

A corpus is UTF-8 text with one example per line; for a conditional model each line is a label, a tab,
then the text (`split_labels`, `read_examples`), and the held-out split keeps each label with its text
(`hold_out`). Reading is strict, so that a wrong file is refused with the line at fault rather than
trained on. Batches group sentences of similar length to keep padding small; the order of an epoch is
a pure function of (seed, epoch), so a run can be resumed at any batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, Protocol, TypeVar

import numpy as np
import torch

from vaegen.core.config import DataConfig
from vaegen.core.errors import CorpusError
from vaegen.core.tokenizer import BOS_ID, EOS_ID, PAD_ID


def read_lines(path: Path, max_line_chars: int = DataConfig.max_line_chars, errors: str = "strict") -> list[str]:
    """Non-blank lines of a UTF-8 file, stripped; CRLF accepted.

    errors="replace" turns invalid bytes into U+FFFD instead of refusing the file.
    """
    if not path.exists():
        raise CorpusError(f"corpus {path} does not exist; pass a UTF-8 text file with one example per line")
    if path.is_dir():
        raise CorpusError(f"corpus {path} is a directory; pass a UTF-8 text file with one example per line")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise CorpusError(f"cannot read corpus {path} ({exc.strerror}); check that it is a readable file")
    if b"\0" in raw:
        at = raw[: raw.index(b"\0")].count(b"\n") + 1
        raise CorpusError(f"corpus {path} holds a NUL byte on line {at}: it looks binary; pass a UTF-8 text file")
    try:
        text = raw.decode("utf-8", errors=errors)
    except UnicodeDecodeError as exc:
        at = raw[: exc.start].count(b"\n") + 1
        raise CorpusError(f"corpus {path} is not valid UTF-8 (line {at}); convert it (e.g. iconv -t UTF-8) "
                          f"or pass --replace-bad-bytes to replace bad bytes with U+FFFD")
    lines = []
    for number, line in enumerate(text.split("\n"), start=1):
        stripped = line.strip()
        if len(stripped) > max_line_chars:
            raise CorpusError(f"corpus {path} line {number} has {len(stripped):,} characters, more than "
                              f"data.max_line_chars = {max_line_chars:,}; put one example per line or raise that limit")
        if stripped:
            lines.append(stripped)
    if not lines:
        raise CorpusError(f"corpus {path} has no text (empty or blank lines only); give it one example per line")
    return lines


def split_labels(lines: list[str], source: Path) -> tuple[list[str], list[str]]:
    """'label<TAB>text' lines -> (labels, texts); a line without a label or a text is refused."""
    labels, texts = [], []
    for number, line in enumerate(lines, start=1):
        label, tab, text = line.partition("\t")
        if not tab or not label.strip() or not text.strip():
            raise CorpusError(f"{source} line {number} is not 'label<TAB>text'; a conditional model (model.label_dim "
                              f"> 0) reads one label, a tab and the text per line")
        labels.append(label.strip())
        texts.append(text.strip())
    return labels, texts


T = TypeVar("T")


def split_valid(lines: list[T], fraction: float, min_lines: int) -> tuple[list[T], list[T]]:
    """Hold out every k-th line, k = 1/fraction: deterministic, and spread over the whole corpus."""
    every = max(2, round(1 / fraction))
    valid = lines[every - 1 :: every]
    if len(valid) < min_lines or len(lines) - len(valid) < 1:
        raise CorpusError(
            f"corpus has {len(lines)} lines, too few to hold out {min_lines} for validation at "
            f"data.valid_fraction={fraction}; add lines or pass --valid FILE"
        )
    train = [line for i, line in enumerate(lines) if (i + 1) % every]
    return train, valid


class Examples(NamedTuple):
    """A corpus as training reads it: the labels of a conditional model (else None) and the texts."""

    labels: list[str] | None
    texts: list[str]


def examples_of(lines: list[str], source: Path) -> Examples:
    """Lines given to a model (generation's input, the served map's corpus) as examples: labelled when every line
    holds a tab ('label<TAB>text', as a conditional model's training corpus), else plain texts."""
    return Examples(*split_labels(lines, source)) if all("\t" in line for line in lines) else Examples(None, lines)


def read_examples(path: Path, labelled: bool, max_line_chars: int = DataConfig.max_line_chars,
                  errors: str = "strict") -> Examples:
    """The corpus at `path`: 'label<TAB>text' lines when `labelled` (a conditional model), else plain texts."""
    lines = read_lines(path, max_line_chars, errors)
    return Examples(*split_labels(lines, path)) if labelled else Examples(None, lines)


def hold_out(examples: Examples, fraction: float, min_lines: int) -> tuple[Examples, Examples]:
    """(training, validation): every k-th example held out as `split_valid` does, each label with its text."""
    train_texts, valid_texts = split_valid(examples.texts, fraction, min_lines)
    if examples.labels is None:
        return Examples(None, train_texts), Examples(None, valid_texts)
    train_labels, valid_labels = split_valid(examples.labels, fraction, min_lines)
    return Examples(train_labels, train_texts), Examples(valid_labels, valid_texts)


def truncate(ids: list[list[int]], max_length: int) -> tuple[list[list[int]], int]:
    """Cut sentences to max_length tokens; returns the sentences and how many were cut."""
    cut = sum(len(s) > max_length for s in ids)
    return [s[:max_length] for s in ids], cut


@dataclass
class Batch:
    """Sentences as `tokens` (B, T): the pieces then </s>, right-padded; `lengths` (B,) counts </s>;
    `labels` (B,), label ids, for a conditional model; `form_ids` (B, T, 4), where each step stands in the
    sentence's own form, for a form-aware model (`ReadsForms`)."""

    tokens: torch.Tensor
    lengths: torch.Tensor
    labels: torch.Tensor | None = None
    form_ids: torch.Tensor | None = None

    def to(self, device: torch.device) -> Batch:
        return Batch(self.tokens.to(device), self.lengths.to(device),
                     None if self.labels is None else self.labels.to(device),
                     None if self.form_ids is None else self.form_ids.to(device))

    @property
    def decoder_inputs(self) -> torch.Tensor:
        """(B, T): <s> then the tokens shifted right, so step t predicts tokens[:, t] (teacher forcing)."""
        bos = torch.full_like(self.tokens[:, :1], BOS_ID)
        return torch.cat([bos, self.tokens[:, :-1]], dim=1)


TokenIds = Sequence[int] | np.ndarray  # one sentence: a list, or a slice of a flat token array


class ReadsForms(Protocol):
    """What reads the form ids of written sentences for a form-aware model (`songci.form_inputs.FormReader`)."""

    def batch(self, sentences: Sequence[TokenIds], width: int) -> torch.Tensor:
        """(B, width, 4) form ids for a padded batch of sentences (each written then ended)."""
        ...


def collate(sentences: Sequence[TokenIds], labels: Sequence[int] | None = None,
            form_reader: ReadsForms | None = None) -> Batch:
    """Token-id sequences (lists or arrays), with their label ids if any -> a padded batch with </s> appended;
    with a `form_reader`, each sentence's form ids too."""
    lengths = np.fromiter((len(s) + 1 for s in sentences), dtype=np.int64, count=len(sentences))
    tokens = np.full((len(sentences), int(lengths.max())), PAD_ID, dtype=np.int64)
    for row, sentence in enumerate(sentences):
        tokens[row, : len(sentence)] = sentence
        tokens[row, len(sentence)] = EOS_ID
    return Batch(torch.from_numpy(tokens), torch.from_numpy(lengths),
                 None if labels is None else torch.as_tensor(labels, dtype=torch.long),
                 None if form_reader is None else form_reader.batch(sentences, tokens.shape[1]))


def epoch_batches(lengths: Sequence[int] | np.ndarray, batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """Index lists for one epoch: sentences of similar length together, batches in random order.

    A random permutation followed by a stable sort on length gives length-homogeneous batches whose
    members still change from epoch to epoch.
    """
    generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
    order = torch.randperm(len(lengths), generator=generator).numpy()
    by_length = order[np.argsort(np.asarray(lengths)[order], kind="stable")].tolist()
    batches = [by_length[i : i + batch_size] for i in range(0, len(by_length), batch_size)]
    shuffled = torch.randperm(len(batches), generator=generator).tolist()
    return [batches[i] for i in shuffled]


def eval_batches(sentences: Sequence[TokenIds], batch_size: int, labels: Sequence[int] | None = None,
                 form_reader: ReadsForms | None = None) -> list[Batch]:
    """Fixed, length-sorted batches for validation and encoding (order restored by the caller if needed)."""
    order = sorted(range(len(sentences)), key=lambda i: len(sentences[i]))
    chunks = [order[j : j + batch_size] for j in range(0, len(order), batch_size)]
    return [collate([sentences[i] for i in chunk], None if labels is None else [labels[i] for i in chunk], form_reader)
            for chunk in chunks]
