"""Arbitrary Unicode through tokenization, encode, interpolate and complete: no crash, no hang."""

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import vaegen
from vaegen.generator import SentenceGenerator

TEXT = st.text(max_size=200)
PROPERTY = settings(max_examples=60, deadline=5000, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def model(tiny_checkpoint: Path) -> SentenceGenerator:
    return vaegen.load(tiny_checkpoint, "cpu")


@PROPERTY
@given(text=TEXT)
def test_tokenizer_never_fails(model: SentenceGenerator, text: str) -> None:
    ids = model.tokenizer.encode([text])[0]
    assert all(0 <= i < model.tokenizer.vocab_size for i in ids)
    assert isinstance(model.tokenizer.decode([ids])[0], str)
    model.tokenizer.unknown(text)


@PROPERTY
@given(texts=st.lists(TEXT, min_size=1, max_size=5))
def test_encode_gives_finite_codes(model: SentenceGenerator, texts: list[str]) -> None:
    posterior = model.encode(texts)
    assert posterior.mu.shape == (len(texts), model.latent_dim)
    assert posterior.mu.isfinite().all() and posterior.logvar.isfinite().all()


@PROPERTY
@given(a=TEXT, b=TEXT, steps=st.integers(2, 6))
def test_interpolate_returns_one_line_per_step(model: SentenceGenerator, a: str, b: str, steps: int) -> None:
    lines = model.interpolate(a, b, steps)
    assert len(lines) == steps and all(isinstance(line.text, str) for line in lines)


@PROPERTY
@given(prefix=TEXT.filter(lambda text: text.strip() and text.isprintable()))
def test_completions_begin_with_the_prefix_verbatim(model: SentenceGenerator, prefix: str) -> None:
    for completion in model.complete(prefix[:40], n=2, candidates=8, seed=0, max_length=60):
        assert completion.text.startswith(prefix[:40])
