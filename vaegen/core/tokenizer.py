"""SentencePiece tokenizer learned from the training lines and carried, as bytes, in the checkpoint.

Ids 0-3 are reserved: <pad>, <unk>, <s> (decoder start) and </s> (end of sentence). Text is kept as
written (identity normalisation), so Chinese full-width punctuation survives a round trip instead of
being folded to ASCII by NFKC. With byte fallback (the default) a character outside the vocabulary
becomes its UTF-8 bytes, so every line round-trips and the likelihood covers all of its text; the unk
piece is renamed so that a literal "<unk>" in a corpus (PTB has many) is an ordinary word.
"""

from __future__ import annotations

import io
import os
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

import sentencepiece as spm

from vaegen.core.config import TokenizerConfig
from vaegen.core.errors import CorpusError

PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3
UNK_PIECE = "<vaegen:unk>"  # not "<unk>", which corpora use as a word
BYTE_PIECES = 256
CJK_SAMPLE = 20_000  # the lines a corpus's script is judged on
CJK_MAJORITY = 0.5  # a corpus is CJK text (its units are characters) when more of its characters are CJK


def cjk_share(lines: list[str]) -> float:
    """Share of the non-space characters that are CJK ideographs or kana/hangul."""
    total = cjk = 0
    for line in lines:
        for ch in line:
            if ch.isspace():
                continue
            total += 1
            name = unicodedata.name(ch, "")
            cjk += name.startswith(("CJK", "HIRAGANA", "KATAKANA", "HANGUL"))
    return cjk / total if total else 0.0


def is_cjk(lines: Sequence[str]) -> bool:
    """Whether a corpus is CJK text, read from its first lines: the one rule that decides a corpus's script for
    the tokenizer, the metrics (characters or words) and the fluency judge."""
    return cjk_share(list(lines[:CJK_SAMPLE])) > CJK_MAJORITY


@dataclass(frozen=True)
class TokenizerChoice:
    """What was trained, resolved from 'auto' and 0 defaults; printed so the user knows."""

    model_type: str
    vocab_size: int
    character_coverage: float
    cjk_share: float


def resolve(lines: list[str], config: TokenizerConfig) -> TokenizerChoice:
    share = cjk_share(lines[:CJK_SAMPLE])
    cjk = share > CJK_MAJORITY
    model_type = config.model_type if config.model_type != "auto" else ("char" if cjk else "unigram")
    coverage = config.character_coverage or (0.9995 if cjk else 1.0)
    return TokenizerChoice(model_type, config.vocab_size, coverage, share)


class Tokenizer:
    """Text <-> ids, with the trained SentencePiece model as its whole state."""

    def __init__(self, model_bytes: bytes) -> None:
        self.model_bytes = model_bytes
        self.sp = spm.SentencePieceProcessor(model_proto=model_bytes)
        # byte pieces of ASCII control characters (newline among them): never generated, since an
        # example is one line of text; empty without byte fallback
        controls = (self.sp.piece_to_id(f"<0x{byte:02X}>") for byte in (*range(0x20), 0x7F))
        self.control_ids = [i for i in controls if self.sp.is_byte(i)]

    @classmethod
    def train(cls, lines: list[str], config: TokenizerConfig) -> tuple[Tokenizer, TokenizerChoice]:
        choice = resolve(lines, config)
        step = max(1, len(lines) // config.sample_lines)  # a bounded, deterministic sample
        sample = lines[::step][: config.sample_lines]
        model = io.BytesIO()
        try:
            spm.SentencePieceTrainer.train(
                sentence_iterator=iter(sample),
                model_writer=model,
                model_type=choice.model_type,
                vocab_size=choice.vocab_size + (BYTE_PIECES if config.byte_fallback else 0),
                hard_vocab_limit=False,  # vocab_size is a ceiling: small corpora get fewer pieces
                character_coverage=choice.character_coverage,
                normalization_rule_name="identity",
                add_dummy_prefix=choice.model_type != "char",
                pad_id=PAD_ID, unk_id=UNK_ID, bos_id=BOS_ID, eos_id=EOS_ID, unk_piece=UNK_PIECE,
                byte_fallback=config.byte_fallback,
                num_threads=os.cpu_count() or 1,
                minloglevel=2,
            )
        except RuntimeError as exc:
            raise CorpusError(f"could not train the tokenizer on this corpus ({exc}); use more or longer lines")
        tokenizer = cls(model.getvalue())
        return tokenizer, TokenizerChoice(choice.model_type, tokenizer.vocab_size, choice.character_coverage, choice.cjk_share)

    @property
    def vocab_size(self) -> int:
        return self.sp.get_piece_size()

    def encode(self, texts: list[str]) -> list[list[int]]:
        return self.sp.encode(texts)

    def decode(self, ids: list[list[int]]) -> list[str]:
        return self.sp.decode(ids)

    def unknown(self, text: str) -> list[str]:
        """The parts of `text` that the vocabulary cannot represent (they map to <unk>)."""
        pieces = self.sp.encode(text, out_type=str)
        return [piece for piece, i in zip(pieces, self.sp.encode(text)) if i == UNK_ID]
