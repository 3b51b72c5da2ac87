"""SentencePiece training from lines: round trips, the automatic choice, unknown characters, the line sample."""

import pytest
from conftest import chinese_lines, english_lines

from vaegen.core.config import TokenizerConfig
from vaegen.core.tokenizer import EOS_ID, UNK_ID, Tokenizer, cjk_share


def test_english_round_trip_with_automatic_unigram() -> None:
    lines = english_lines()
    tokenizer, choice = Tokenizer.train(lines, TokenizerConfig(vocab_size=120))
    assert choice.model_type == "unigram" and choice.character_coverage == 1.0
    assert tokenizer.decode(tokenizer.encode(lines)) == lines
    assert all(UNK_ID not in ids and EOS_ID not in ids for ids in tokenizer.encode(lines))


def test_chinese_round_trip_keeps_full_width_punctuation() -> None:
    lines = chinese_lines(300)
    tokenizer, choice = Tokenizer.train(lines, TokenizerConfig(vocab_size=3000, character_coverage=1.0))
    assert choice.model_type == "char"
    assert tokenizer.decode(tokenizer.encode(lines)) == lines
    assert "，" in tokenizer.decode(tokenizer.encode(["明月几时有，把酒问青天。"]))[0]
    # character-level: one piece per character, no dummy-prefix piece
    assert [len(ids) for ids in tokenizer.encode(lines)] == [len(line) for line in lines]


@pytest.mark.parametrize("model_type", ["unigram", "bpe", "char", "word"])
def test_each_model_type_round_trips(model_type: str) -> None:
    lines = english_lines()
    tokenizer, choice = Tokenizer.train(lines, TokenizerConfig(model_type=model_type, vocab_size=100))
    assert choice.model_type == model_type
    assert tokenizer.decode(tokenizer.encode(lines[:50])) == lines[:50]


def test_bytes_rebuild_the_same_tokenizer() -> None:
    tokenizer, _ = Tokenizer.train(english_lines(), TokenizerConfig(vocab_size=100))
    again = Tokenizer(tokenizer.model_bytes)
    assert again.encode(["a dog sees the river ."]) == tokenizer.encode(["a dog sees the river ."])


def test_unknown_reports_unseen_characters_without_byte_fallback() -> None:
    tokenizer, _ = Tokenizer.train(chinese_lines(200), TokenizerConfig(byte_fallback=False))
    assert tokenizer.unknown("明月") == []
    assert "Ω" in "".join(tokenizer.unknown("明月Ω"))


def test_byte_fallback_keeps_unseen_characters_exact() -> None:
    tokenizer, _ = Tokenizer.train(chinese_lines(200), TokenizerConfig())
    text = "明月Ω𠀋几时有"
    assert tokenizer.unknown(text) == []
    assert UNK_ID not in tokenizer.encode([text])[0]
    assert tokenizer.decode(tokenizer.encode([text])) == [text]
    # two adjacent unseen characters stay two characters, not one merged <unk>
    assert len(tokenizer.encode(["ΩΨ"])[0]) == len("ΩΨ".encode())


@pytest.mark.parametrize("byte_fallback", [True, False])
def test_literal_unk_is_an_ordinary_word(byte_fallback: bool) -> None:
    lines = [line.replace("river", "<unk>") for line in english_lines()]
    tokenizer, _ = Tokenizer.train(lines, TokenizerConfig(model_type="word", vocab_size=100, byte_fallback=byte_fallback))
    ids = tokenizer.encode(["the <unk> <unk> house"])[0]
    assert UNK_ID not in ids and len(ids) == 4
    assert tokenizer.decode([ids]) == ["the <unk> <unk> house"]


def test_cjk_share() -> None:
    assert cjk_share(["明月几时有"]) == 1.0
    assert cjk_share(["hello world"]) == 0.0
    assert cjk_share([""]) == 0.0


def test_control_ids_are_the_control_character_bytes() -> None:
    tokenizer, _ = Tokenizer.train(chinese_lines(200), TokenizerConfig())
    pieces = {tokenizer.sp.id_to_piece(i) for i in tokenizer.control_ids}
    assert len(pieces) == 33 and {"<0x0A>", "<0x00>", "<0x7F>"} <= pieces and "<0x20>" not in pieces
    assert Tokenizer.train(chinese_lines(200), TokenizerConfig(byte_fallback=False))[0].control_ids == []


@pytest.mark.parametrize("model_type", ["unigram", "char"])
def test_sample_lines_bounds_the_lines_the_tokenizer_learns_from(model_type: str) -> None:
    # each line carries a letter of its own, so the letters in the vocabulary tell which lines were read
    marks = [chr(0x100 + i) for i in range(200)]
    lines = [f"{line} {mark}" for line, mark in zip(english_lines(200), marks, strict=True)]

    def learned(sample_lines: int) -> list[int]:
        config = TokenizerConfig(model_type=model_type, byte_fallback=False, sample_lines=sample_lines)
        tokenizer, _ = Tokenizer.train(lines, config)
        return [i for i, mark in enumerate(marks) if not tokenizer.unknown(mark)]

    assert learned(2_000_000) == list(range(200))
    seen = learned(10)
    assert len(seen) == 10
    assert max(seen) >= 100  # a sample spread over the corpus, not its head: a sorted corpus would bias it
    assert learned(10) == seen  # and the same sample every time
