"""Arbitrary Unicode through tokenization, encode, interpolate and complete: no crash, no hang, and
answers that keep what they promise."""

from pathlib import Path

import pytest
import torch
from conftest import english_lines
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import vaegen
from vaegen.generate.generator import SentenceGenerator

TEXT = st.text(max_size=200)
KNOWN = st.text(alphabet=sorted(set("".join(english_lines()))), max_size=200)  # the tiny model's training characters
PROPERTY = settings(max_examples=60, deadline=5000, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def model(tiny_checkpoint: Path) -> SentenceGenerator:
    return vaegen.load(tiny_checkpoint, "cpu")


def visible(text: str, unknown: str = "") -> str:
    """What a SentencePiece round trip keeps of `text`: runs of spaces collapse and leave both ends, "▁"
    (its word-boundary mark) reads as a space, and each character of `unknown` becomes a space (decoding
    writes an unknown stretch as " ⁇ ")."""
    spaced = "".join(" " if ch in unknown or ch == "▁" else ch for ch in text)
    return " ".join(word for word in spaced.split(" ") if word)


@PROPERTY
@given(text=TEXT)
def test_tokenizer_loses_only_what_it_reports_unknown(model: SentenceGenerator, text: str) -> None:
    tokenizer = model.tokenizer
    ids = tokenizer.encode([text])[0]
    assert all(0 <= i < tokenizer.vocab_size for i in ids)
    lost = tokenizer.unknown(text)
    assert all(part and part in text for part in lost)
    assert visible(tokenizer.decode([ids])[0], "⁇") == visible(text, "".join(lost))


@PROPERTY
@given(text=KNOWN)
def test_text_of_the_training_characters_round_trips(model: SentenceGenerator, text: str) -> None:
    assert model.tokenizer.unknown(text) == []
    assert model.tokenizer.decode(model.tokenizer.encode([text])) == [visible(text)]


@PROPERTY
@given(texts=st.lists(TEXT, min_size=1, max_size=5))
def test_encode_gives_finite_codes(model: SentenceGenerator, texts: list[str]) -> None:
    posterior = model.encode(texts)
    assert posterior.mu.shape == (len(texts), model.latent_dim)
    assert posterior.mu.isfinite().all() and posterior.logvar.isfinite().all()


@PROPERTY
@given(a=TEXT, b=TEXT, steps=st.integers(2, 6))
def test_interpolation_walks_evenly_between_the_two_codes(model: SentenceGenerator, a: str, b: str,
                                                          steps: int) -> None:
    lines = model.interpolate(a, b, steps)
    assert len(lines) == steps
    codes = torch.tensor([line.z for line in lines])
    ends = torch.cat([model.encode([a]).mu, model.encode([b]).mu])
    assert torch.allclose(codes[[0, -1]], ends, atol=1e-5)
    assert torch.allclose(codes.diff(dim=0), (ends[1] - ends[0]).expand(steps - 1, -1) / (steps - 1), atol=1e-5)
    # each line is the greedy decoding of its code, with that decoding's log-probability
    greedy = model.decode(codes)
    assert [line.text for line in lines] == [g.text for g in greedy]
    assert all(line.logprob == pytest.approx(g.logprob, abs=1e-4) and line.logprob <= 0
               for line, g in zip(lines, greedy, strict=True))


@PROPERTY
@given(prefix=(TEXT | KNOWN).filter(lambda text: text.strip() and text.isprintable()))
@example(prefix="a dog sees the ")  # seams at a space: the continuation's own leading space must go
@example(prefix="a small bird likes ")
def test_completions_continue_the_prefix_in_one_line(model: SentenceGenerator, prefix: str) -> None:
    prefix = prefix[:40]
    completions = model.complete(prefix, n=2, candidates=8, seed=0, max_length=60)
    assert len(completions) == 2
    assert completions == model.complete(prefix, n=2, candidates=8, seed=0, max_length=60)  # the seed decides
    for completion in completions:
        head, rest = completion.text[: len(prefix)], completion.text[len(prefix):]
        assert head == prefix
        # the continuation is decoded text alone: the decoder never writes <unk>, so a "⁇" would be the
        # prefix's own round trip leaking in; and the seam never doubles a space
        assert "⁇" not in rest and rest.isprintable()
        assert not (prefix[-1].isspace() and rest[:1].isspace())
        assert len(completion.z) == model.latent_dim and 0 >= completion.logprob > float("-inf")
