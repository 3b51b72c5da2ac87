"""The training objective as pure functions: reconstruction NLL, closed-form KL, annealing, word dropout.

Loss per sentence = sum of token NLLs (</s> counted) + beta * KL(q(z|x) || N(0, I)), averaged over
the batch. beta follows a KL-annealing schedule; word dropout weakens the decoder's view of the
previous words so that it has to rely on z (Bowman et al., 2016, section 3.1).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F

from vaegen.config import AnnealConfig
from vaegen.tokenizer import BOS_ID, PAD_ID


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag(exp(logvar))) || N(0, I)) per example: (B, L) -> (B,), in nats."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=-1)


def reconstruction_nll(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Summed token NLL per sentence, padding ignored: logits (B, T, V), targets (B, T) -> (B,)."""
    nll = F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=PAD_ID, reduction="none")
    return nll.view_as(targets).sum(dim=1)


def kl_weight(step: int, config: AnnealConfig) -> float:
    """beta at a training step (0-based) for the configured schedule, in [0, beta_max]."""
    if config.schedule == "logistic":  # Bowman et al.: 1 / (1 + exp(-k (step - x0)))
        return config.beta_max / (1.0 + math.exp(-config.k * (step - config.x0)))
    if config.schedule == "linear":
        return config.beta_max * min(1.0, step / config.warmup_steps)
    if config.schedule == "cyclical":  # Fu et al., 2019: rise over `ratio` of each period, then hold
        phase = (step % config.period) / config.period
        return config.beta_max * min(1.0, phase / config.ratio)
    if config.schedule == "constant":
        return config.beta_max
    raise ValueError(f"unknown anneal schedule {config.schedule!r}")


def word_dropout(tokens: torch.Tensor, rate: float, unk_id: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Replace each decoder input token by unk_id with probability `rate`; <s> and padding are kept.

    tokens (B, T) -> (B, T), a new tensor.
    """
    if rate <= 0.0:
        return tokens
    draw = torch.rand(tokens.shape, generator=generator).to(tokens.device)  # drawn on the CPU: same on every device
    droppable = (tokens != PAD_ID) & (tokens != BOS_ID)
    return torch.where(droppable & (draw < rate), torch.full_like(tokens, unk_id), tokens)


class LossTerms(NamedTuple):
    loss: torch.Tensor  # scalar: mean over the batch of rec + beta * kl
    rec: torch.Tensor  # (B,) reconstruction NLL per sentence
    kl: torch.Tensor  # (B,) KL per sentence


def vae_loss(logits: torch.Tensor, targets: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, beta: float) -> LossTerms:
    rec = reconstruction_nll(logits, targets)
    kl = kl_divergence(mu, logvar)
    return LossTerms((rec + beta * kl).mean(), rec, kl)
