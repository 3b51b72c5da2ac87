"""The evaluation math against answers known in advance: exact likelihoods, MI and active units of
constructed posteriors, and sacrebleu's own sentence BLEU."""

from __future__ import annotations

import math

import pytest
import torch
from sacrebleu.metrics import BLEU

from vaegen.core import metrics
from vaegen.core.config import ModelConfig
from vaegen.core.model import SentenceVAE
from vaegen.core.tokenizer import BOS_ID
from vaegen.eval.report import score_corpus


def one_dimensional_model(shift: float = 0.0) -> SentenceVAE:
    """A random VAE with a 1-D latent whose decoder depends strongly on z; `shift` moves q(z|x) off the posterior."""
    torch.manual_seed(0)
    model = SentenceVAE(ModelConfig(embed_dim=8, hidden_dim=16, latent_dim=1, embed_dropout=0.0), vocab_size=12)
    with torch.no_grad():
        assert model.latent_to_hidden is not None and model.to_posterior is not None and model.output is not None
        model.latent_to_hidden.weight.mul_(10.0)
        model.output.weight.mul_(4.0)
        model.to_posterior.bias[0] += shift
    return model.eval()


SENTENCES = [[4, 5, 6], [7, 7, 8, 9], [10, 4], [11, 6, 5, 4, 8], [9], [5, 8, 11]]


@torch.no_grad()
def exact_nll(model: SentenceVAE, sentence: list[int], points: int = 40_001, bound: float = 12.0) -> float:
    """-log of the integral of p(x|z) N(z; 0, 1) over z, by the trapezoid rule on a fine grid."""
    z = torch.linspace(-bound, bound, points, dtype=torch.float64).unsqueeze(1)
    model = model.double()
    tokens = torch.tensor(sentence + [3], dtype=torch.long).expand(points, -1)
    inputs = torch.cat([torch.full((points, 1), BOS_ID), tokens[:, :-1]], dim=1)
    hidden, _ = model.decoder_states(inputs, z, model.initial_state(z))
    log_px_z = -model.token_nll(hidden, tokens, torch.float64)
    log_joint = log_px_z + metrics.gaussian_log_density(z, torch.zeros_like(z), torch.zeros_like(z))
    weights = torch.full((points,), 2 * bound / (points - 1), dtype=torch.float64)
    weights[[0, -1]] /= 2
    model.float()
    return -torch.logsumexp(log_joint + weights.log(), dim=0).item()


def test_importance_weighted_nll_matches_numerical_integration() -> None:
    model = one_dimensional_model()
    scores = score_corpus(model, SENTENCES, samples=20_000, device=torch.device("cpu"))
    order = sorted(range(len(SENTENCES)), key=lambda i: len(SENTENCES[i]))  # score_corpus sorts by length
    exact = torch.tensor([exact_nll(model, SENTENCES[i]) for i in order], dtype=torch.float64)
    assert torch.allclose(scores.nll.double(), exact, atol=0.1), (scores.nll, exact)
    # the model must make the latent matter, or the test would prove little
    assert (scores.rec - exact.float()).abs().max() > 0.1


def test_importance_weighted_nll_stays_below_elbo_and_shrinks_with_k() -> None:
    model = one_dimensional_model(shift=1.5)  # a poor proposal: a wide gap for the samples to close
    sentences = SENTENCES * 10
    by_k = {k: score_corpus(model, sentences, samples=k, device=torch.device("cpu"), seed=k)
            for k in (1, 10, 100, 1000)}
    nll = {k: s.nll.mean().item() for k, s in by_k.items()}
    elbo = (by_k[1000].rec + by_k[1000].kl).mean().item()
    assert nll[1] > nll[10] > nll[100] > nll[1000]
    assert all(nll[k] <= elbo for k in (10, 100, 1000))
    assert nll[1] == pytest.approx(elbo, abs=1.0)  # one sample: an unbiased estimate of -ELBO


def test_language_model_scores_are_exact() -> None:
    torch.manual_seed(0)
    model = SentenceVAE(ModelConfig(embed_dim=8, hidden_dim=16, latent_dim=0, embed_dropout=0.0), vocab_size=12).eval()
    scores = score_corpus(model, SENTENCES, samples=50, device=torch.device("cpu"))
    assert torch.equal(scores.kl, torch.zeros(len(SENTENCES)))
    assert torch.allclose(scores.nll, scores.rec)
    assert scores.mu.shape == (len(SENTENCES), 0)
    assert metrics.mutual_information(scores.mu, scores.logvar, scores.z) == 0.0


def test_mutual_information_is_zero_when_every_posterior_is_the_same() -> None:
    torch.manual_seed(0)
    n = 4000
    mu, logvar = torch.zeros(n, 2), torch.zeros(n, 2)
    z = torch.randn(n, 2)
    assert abs(metrics.mutual_information(mu, logvar, z)) < 0.05


def test_mutual_information_is_log_n_when_the_code_identifies_the_sentence() -> None:
    torch.manual_seed(0)
    n = 2000
    mu = torch.arange(n, dtype=torch.float32).unsqueeze(1) * 10.0  # far apart, narrow posteriors
    logvar = torch.full((n, 1), math.log(0.01**2))
    z = mu + 0.01 * torch.randn(n, 1)
    assert metrics.mutual_information(mu, logvar, z) == pytest.approx(math.log(n), abs=0.05)


def test_mutual_information_of_a_gaussian_channel() -> None:
    """x -> mean ~ N(0, s^2), q(z|x) = N(mean, sigma^2): I = 1/2 log(1 + s^2 / sigma^2) per dimension."""
    torch.manual_seed(0)
    n, s, sigma = 4000, 1.0, 0.5
    mu = s * torch.randn(n, 2)
    logvar = torch.full((n, 2), math.log(sigma**2))
    z = mu + sigma * torch.randn(n, 2)
    expected = 2 * 0.5 * math.log(1 + s**2 / sigma**2)
    assert metrics.mutual_information(mu, logvar, z) == pytest.approx(expected, abs=0.08)


def test_mutual_information_cannot_pass_log_n_and_then_says_it_is_saturated() -> None:
    """A code of 3 x 1/2 log(1 + 10^6) = 20.7 nats estimated from 300 sentences reads log 300 = 5.7: the
    estimate tells about N, not the code; a 0.8-nat channel over 4000 sentences stays clear of its ceiling."""
    torch.manual_seed(0)
    n, sigma = 300, 1e-3
    mu = torch.randn(n, 3)
    rich = metrics.mutual_information(mu, torch.full((n, 3), math.log(sigma**2)), mu + sigma * torch.randn(n, 3))
    ceiling = metrics.mi_ceiling(n)
    assert ceiling == math.log(n) and rich == pytest.approx(ceiling, abs=0.2) and metrics.mi_saturated(rich, ceiling)
    mu = torch.randn(4000, 2)
    modest = metrics.mutual_information(mu, torch.full((4000, 2), math.log(0.25)), mu + 0.5 * torch.randn(4000, 2))
    assert not metrics.mi_saturated(modest, metrics.mi_ceiling(4000))


def test_saturation_starts_at_a_share_of_log_n() -> None:
    ceiling = math.log(565)
    assert metrics.mi_saturated(metrics.MI_SATURATION_SHARE * ceiling, ceiling)
    assert not metrics.mi_saturated(metrics.MI_SATURATION_SHARE * ceiling - 0.01, ceiling)
    assert metrics.mi_saturated(6.51, ceiling)  # sampling noise can carry it above log N
    assert metrics.mi_ceiling(0) == metrics.mi_ceiling(1) == 0.0 and not metrics.mi_saturated(0.0, 0.0)


def test_active_units_count_dimensions_whose_mean_varies() -> None:
    torch.manual_seed(0)
    mu = torch.cat([torch.randn(1000, 3), 0.05 * torch.randn(1000, 2), torch.full((1000, 1), 7.0)], dim=1)
    assert metrics.active_units(mu) == 3
    assert metrics.active_units(mu, threshold=0.001) == 5
    assert metrics.active_units(torch.zeros(1000, 0)) == 0


def test_iw_bound_of_equal_weights_is_that_weight() -> None:
    log_weights = torch.full((3, 7), -4.2)
    assert torch.allclose(metrics.iw_bound(log_weights), torch.full((3,), -4.2))


def test_distinct_n_counts_unique_ngrams() -> None:
    texts = ["a b a b", "a b c"]
    assert metrics.distinct_n(texts, 1, cjk=False) == pytest.approx(3 / 7)
    assert metrics.distinct_n(texts, 2, cjk=False) == pytest.approx(3 / 5)  # ab ba ab | ab bc
    assert metrics.distinct_n(["明月明月"], 1, cjk=True) == pytest.approx(2 / 4)
    assert metrics.distinct_n([], 2, cjk=False) == 0.0


@pytest.mark.parametrize("cjk", [False, True])
def test_self_bleu_equals_sacrebleu_sentence_scores_against_all_others(cjk: bool) -> None:
    from conftest import chinese_lines, english_lines

    texts = chinese_lines(60) if cjk else english_lines(60)
    texts = texts + texts[:5]  # duplicates: the clipping against "all but me" must still be right
    bleu = BLEU(tokenize="zh" if cjk else "13a", effective_order=True)
    expected = sum(bleu.sentence_score(t, texts[:i] + texts[i + 1 :]).score for i, t in enumerate(texts)) / len(texts)
    assert metrics.self_bleu(texts, cjk) == pytest.approx(expected, abs=1e-9)


def test_corpus_bleu_is_100_for_perfect_reconstructions() -> None:
    texts = ["the cat sat on the mat .", "a dog ran to the old park today ."]
    assert metrics.corpus_bleu(texts, texts, cjk=False) == pytest.approx(100.0)
    assert metrics.corpus_bleu(["x y z w"] * 2, texts, cjk=False) < 1.0
