"""The objective's math on tiny tensors, against closed forms and torch.distributions."""

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from conftest import TINY
from torch.distributions import Normal
from torch.distributions import kl_divergence as torch_kl

from vaegen.core.config import AnnealConfig
from vaegen.core.objectives import (
    LinearCrossEntropy,
    kl_divergence,
    kl_weight,
    reconstruction_nll,
    vae_loss,
    word_dropout,
)
from vaegen.core.tokenizer import BOS_ID, PAD_ID, UNK_ID


def test_kl_matches_torch_distributions() -> None:
    torch.manual_seed(0)
    mu, logvar = torch.randn(5, 7), torch.randn(5, 7)
    expected = torch_kl(Normal(mu, (0.5 * logvar).exp()), Normal(0.0, 1.0)).sum(-1)
    assert torch.allclose(kl_divergence(mu, logvar), expected, atol=1e-5)


def test_kl_matches_monte_carlo_estimate() -> None:
    generator = torch.Generator().manual_seed(1)
    mu = torch.tensor([[0.5, -1.0, 2.0]])
    logvar = torch.tensor([[-1.0, 0.3, 0.0]])
    q = Normal(mu, (0.5 * logvar).exp())
    z = mu + (0.5 * logvar).exp() * torch.randn(400_000, 3, generator=generator)
    estimate = (q.log_prob(z) - Normal(0.0, 1.0).log_prob(z)).sum(-1).mean()
    assert kl_divergence(mu, logvar).item() == pytest.approx(estimate.item(), abs=0.02)


def test_kl_is_zero_only_at_the_prior() -> None:
    assert kl_divergence(torch.zeros(2, 4), torch.zeros(2, 4)).abs().max().item() == 0.0
    assert (kl_divergence(torch.full((2, 4), 0.1), torch.zeros(2, 4)) > 0).all()


def test_logistic_schedule() -> None:
    config = AnnealConfig(schedule="logistic", k=0.0025, x0=2500)
    assert kl_weight(2500, config) == pytest.approx(0.5)
    assert kl_weight(0, config) == pytest.approx(1 / (1 + math.exp(6.25)))
    assert kl_weight(10_000, config) > 0.99999
    values = [kl_weight(s, config) for s in range(0, 6000, 100)]
    assert values == sorted(values)


def test_logistic_schedule_far_before_its_midpoint_is_zero_not_an_overflow() -> None:
    config = AnnealConfig(schedule="logistic", k=0.01, x0=100_000)  # exp(1000) at step 0 overflows a float
    assert kl_weight(0, config) == 0.0 and kl_weight(100_000, config) == 0.5
    near = AnnealConfig(schedule="logistic", k=0.01, x0=70_000)  # exp(700): representable, kept as it was
    assert kl_weight(0, near) == 1.0 / (1.0 + math.exp(700.0)) > 0.0


def test_training_with_a_logistic_midpoint_far_away_starts(english_corpus: Path, tmp_path: Path) -> None:
    from vaegen.cli import run

    assert run(["train", str(english_corpus), "--config", str(TINY), "--out", str(tmp_path / "m.pt"), "--no-progress",
                "--max-steps", "2", "--set", "anneal.schedule=logistic", "--set", "anneal.k=0.01",
                "--set", "anneal.x0=100000"]) == 0


def test_linear_schedule() -> None:
    config = AnnealConfig(schedule="linear", warmup_steps=100, beta_max=0.8)
    assert [kl_weight(s, config) for s in (0, 50, 100, 500)] == pytest.approx([0.0, 0.4, 0.8, 0.8])


def test_cyclical_schedule() -> None:
    config = AnnealConfig(schedule="cyclical", period=100, ratio=0.5)
    assert [kl_weight(s, config) for s in (0, 25, 50, 99, 100, 125, 250)] == pytest.approx([0, 0.5, 1, 1, 0, 0.5, 1])


def test_constant_schedule() -> None:
    assert kl_weight(0, AnnealConfig(schedule="constant", beta_max=0.3)) == 0.3
    assert kl_weight(10**6, AnnealConfig(schedule="constant", beta_max=0.3)) == 0.3


def test_word_dropout_rate_and_kept_tokens() -> None:
    tokens = torch.randint(4, 50, (200, 60))
    tokens[:, 0] = BOS_ID
    tokens[:, 50:] = PAD_ID
    dropped = word_dropout(tokens, 0.3, UNK_ID, torch.Generator().manual_seed(0))
    real = tokens[:, 1:50]
    rate = (dropped[:, 1:50] == UNK_ID).float().mean().item()
    assert rate == pytest.approx(0.3, abs=0.01)
    assert (dropped[:, 0] == BOS_ID).all() and (dropped[:, 50:] == PAD_ID).all()
    kept = dropped[:, 1:50] != UNK_ID
    assert torch.equal(dropped[:, 1:50][kept], real[kept])
    assert word_dropout(tokens, 0.0, UNK_ID) is tokens
    assert (word_dropout(tokens, 1.0, UNK_ID)[:, 1:50] == UNK_ID).all()


def test_reconstruction_nll_ignores_padding_and_sums_per_sentence() -> None:
    torch.manual_seed(0)
    hidden, weight, bias = torch.randn(2, 4, 6), torch.randn(9, 6), torch.randn(9)
    targets = torch.tensor([[5, 6, 3, PAD_ID], [7, 3, PAD_ID, PAD_ID]])
    logp = (hidden @ weight.t() + bias).log_softmax(-1)
    expected = torch.stack([
        -(logp[0, 0, 5] + logp[0, 1, 6] + logp[0, 2, 3]),
        -(logp[1, 0, 7] + logp[1, 1, 3]),
    ])
    assert torch.allclose(reconstruction_nll(hidden, weight, bias, targets), expected, atol=1e-5)


def test_fused_projection_and_cross_entropy_match_autograd() -> None:
    torch.manual_seed(0)
    hidden = torch.randn(13, 8, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(11, 8, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(11, dtype=torch.float64, requires_grad=True)
    targets = torch.randint(0, 11, (13,))
    scale = torch.rand(13, dtype=torch.float64)  # an arbitrary upstream gradient
    fused = LinearCrossEntropy.apply(hidden, weight, bias, targets, torch.float64)
    grads = torch.autograd.grad((fused * scale).sum(), (hidden, weight, bias))
    reference = F.cross_entropy(hidden @ weight.t() + bias, targets, reduction="none")
    expected = torch.autograd.grad((reference * scale).sum(), (hidden, weight, bias))
    assert torch.allclose(fused, reference)
    for got, want in zip(grads, expected):
        assert torch.allclose(got, want)


def test_bfloat16_products_stay_close_to_float32() -> None:
    torch.manual_seed(0)
    hidden, weight, bias = torch.randn(64, 32), torch.randn(500, 32) / 4, torch.zeros(500)
    targets = torch.randint(0, 500, (64,))
    exact = LinearCrossEntropy.apply(hidden, weight, bias, targets, torch.float32)
    low = LinearCrossEntropy.apply(hidden, weight, bias, targets, torch.bfloat16)
    assert low.dtype == torch.float32
    assert (low - exact).abs().mean().item() < 0.02


def test_bfloat16_rows_are_padded_to_few_shapes_without_changing_the_result(monkeypatch: pytest.MonkeyPatch) -> None:
    """The padding that keeps oneDNN's cache of kernels small changes neither the NLL nor a gradient."""
    from vaegen.core import objectives

    torch.manual_seed(0)
    hidden = torch.randn(37, 16, requires_grad=True)
    weight, bias = (torch.randn(50, 16) / 4).requires_grad_(), torch.zeros(50, requires_grad=True)
    targets, scale = torch.randint(0, 50, (37,)), torch.rand(37)

    def nll_and_grads() -> list[torch.Tensor]:
        nll = LinearCrossEntropy.apply(hidden, weight, bias, targets, torch.bfloat16)
        return [nll, *torch.autograd.grad((nll * scale).sum(), (hidden, weight, bias))]

    padded = nll_and_grads()  # 37 rows padded to 128
    monkeypatch.setattr(objectives, "ROW_QUANTUM", 1)  # no padding
    plain = nll_and_grads()
    for got, want in zip(padded, plain):
        assert got.shape == want.shape and torch.allclose(got, want, atol=1e-5)


def test_vae_loss_weights_kl_by_beta() -> None:
    torch.manual_seed(0)
    rec = torch.rand(3) * 20
    mu, logvar = torch.randn(3, 4), torch.randn(3, 4)
    terms = vae_loss(rec, mu, logvar, beta=0.25)
    assert terms.rec is rec and torch.equal(terms.kl, kl_divergence(mu, logvar))
    assert terms.loss.item() == pytest.approx((rec + 0.25 * terms.kl).mean().item())


def test_vae_loss_applies_free_bits_to_the_loss_alone() -> None:
    rec, mu, logvar = torch.zeros(2), torch.zeros(2, 3), torch.zeros(2, 3)  # every dimension at KL 0
    terms = vae_loss(rec, mu, logvar, beta=1.0, free_bits_target=0.5)
    assert terms.loss.item() == pytest.approx(1.5) and terms.kl.abs().max().item() == 0.0


def test_vae_loss_kl_target_floors_the_whole_code_not_each_dimension() -> None:
    # one dimension holds 2 nats, the other none: a per-dimension floor of 1 charges the empty one,
    # a target of 2 over the whole code is met as it is and charges nothing more
    rec, logvar = torch.zeros(1), torch.zeros(1, 2)
    mu = torch.tensor([[2.0, 0.0]], requires_grad=True)
    per_dimension = vae_loss(rec, mu, logvar, beta=1.0, free_bits_target=1.0)
    assert per_dimension.loss.item() == pytest.approx(3.0)
    whole = vae_loss(rec, mu, logvar, beta=1.0, kl_target=2.0 - 1e-4)
    assert whole.loss.item() == pytest.approx(2.0) and whole.kl.item() == pytest.approx(2.0)
    whole.loss.backward()
    assert mu.grad is not None and mu.grad[0].tolist() == pytest.approx([2.0, 0.0])
    below = vae_loss(rec, mu.detach().requires_grad_(), logvar, beta=1.0, kl_target=5.0)
    assert below.loss.item() == pytest.approx(5.0) and below.kl.item() == pytest.approx(2.0)
