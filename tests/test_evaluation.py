"""Held-out figures: bf16 scoring against fp32, precision resolution, MI with its ceiling, the eval table."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import pytest
import torch
from conftest import english_lines

from vaegen.core import checkpoint, devices
from vaegen.core.config import Config, ModelConfig, TokenizerConfig
from vaegen.core.errors import ConfigError
from vaegen.core.model import SentenceVAE
from vaegen.core.tokenizer import Tokenizer
from vaegen.eval.report import Evaluation, evaluate, score_corpus
from vaegen.generate.generator import SentenceGenerator
from vaegen.train import validation
from vaegen.train.validation import ElboReport, evaluate_elbo

CPU = torch.device("cpu")


def tiny_model(vocab: int = 40) -> SentenceVAE:
    torch.manual_seed(0)
    return SentenceVAE(ModelConfig(embed_dim=16, hidden_dim=32, latent_dim=4, embed_dropout=0.0), vocab).eval()


def sentences(n: int = 24, vocab: int = 40) -> list[list[int]]:
    generator = torch.Generator().manual_seed(1)
    lengths = torch.randint(1, 12, (n,), generator=generator).tolist()
    return [torch.randint(4, vocab, (length,), generator=generator).tolist() for length in lengths]


def test_bf16_scores_stay_within_rounding_of_fp32(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(devices, "native_bf16", lambda device: True)
    model, data = tiny_model(), sentences()
    exact = score_corpus(model, data, 8, CPU, precision="fp32")
    low = score_corpus(model, data, 8, CPU, precision="bf16")
    assert not torch.equal(low.nll, exact.nll)  # the bf16 products did run
    assert torch.allclose(low.nll, exact.nll, atol=0.05) and torch.allclose(low.rec, exact.rec, atol=0.05)
    assert torch.equal(low.kl, exact.kl) and torch.equal(low.z, exact.z)  # the encoder is not in bf16
    assert torch.equal(score_corpus(model, data, 8, CPU, precision="auto").nll, low.nll)


def test_bf16_scoring_where_not_native_is_refused_before_any_work(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(devices, "native_bf16", lambda device: False)
    model = tiny_model()
    with pytest.raises(ConfigError, match="--precision bf16"):
        score_corpus(model, sentences(), 8, CPU, precision="bf16")
    assert score_corpus(model, sentences(), 2, CPU, precision="auto").nll.dtype == torch.float32


@pytest.mark.parametrize("native", [False, True])
def test_evaluate_records_the_precision_it_resolved(monkeypatch: pytest.MonkeyPatch, native: bool) -> None:
    monkeypatch.setattr(devices, "native_bf16", lambda device: native)
    lines = english_lines(12)
    tokenizer, _ = Tokenizer.train(english_lines(), TokenizerConfig(vocab_size=100))
    config = Config(model=ModelConfig(embed_dim=8, hidden_dim=8, latent_dim=2))
    torch.manual_seed(0)
    model = SentenceVAE(config.model, tokenizer.vocab_size).eval()
    generator = SentenceGenerator(checkpoint.Loaded(config, tokenizer, model, {}, None), CPU)
    report = evaluate(generator, lines, iw_samples=2, prior_samples=4, precision="auto")
    assert report.precision == ("bf16" if native else "fp32")
    assert report.mi_ceiling == pytest.approx(math.log(len(lines)))


def test_validation_mi_ceiling_counts_the_sentences_after_subsampling(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(validation, "MI_SENTENCES", 4)
    report = evaluate_elbo(tiny_model(), sentences(10), batch_size=4, device=CPU)
    assert report.mi_ceiling == pytest.approx(math.log(4))  # every third of 10 sentences: 4 of them
    assert report.mi <= report.mi_ceiling + 0.5


def test_mi_text_names_its_ceiling_and_says_when_it_is_reached() -> None:
    report = ElboReport(565, 9000, 30.0, 11.0, 41.0, 50.0, 16, 6.51, math.log(565))
    assert report.mi_text() == "MI 6.51 (≤ log 565 = 6.34: saturated, score more sentences)"
    assert report.as_dict()["mi_ceiling"] == math.log(565)
    assert dataclasses.replace(report, mi=3.2).mi_text() == "MI 3.20 (≤ log 565 = 6.34)"
    older: dict[str, Any] = {"sentences": 565, "tokens": 9000, "rec": 30.0, "kl": 11.0, "elbo": 41.0, "ppl": 50.0,
                             "au": 16, "mi": 6.51}
    assert ElboReport(**older).mi_text() == "MI 6.51"  # a report saved before the ceiling was recorded


def test_eval_table_aligns_its_rows_and_shows_the_mi_ceiling() -> None:
    result = Evaluation(
        sentences=565, tokens=9000, units=8000, unit="word", iw_samples=500, precision="fp32", nll=40.0, ppl=120.5,
        elbo=41.0, rec=30.0, kl=11.0, mi=6.51, mi_ceiling=math.log(565), au=16, latent_dim=32, bleu=12.5,
        samples=1000, distinct_1=0.1, distinct_2=0.4, self_bleu=20.0, copy_rate=None, seconds=1.0)
    rows = result.table()
    width = len("prior samples (1,000)")  # the longest name
    assert all(row[width : width + 2] == "  " and row[width + 2] != " " for row in rows)  # one column of values
    assert rows[0] == f"{'sentences':<{width}}  565 (9,000 tokens, 8,000 words with </s>)"
    assert f"{'mutual information':<{width}}  6.51 (≤ log 565 = 6.34: saturated, score more sentences) nats" in rows
    assert rows[-1].endswith("copies of training lines n/a (pass --train)")
