"""The training objective as pure functions: reconstruction NLL, closed-form KL, free bits, annealing, word
dropout, and the stopping rule of aggressive encoder updates.

Loss per sentence = sum of token NLLs (</s> counted) + beta * KL(q(z|x) || N(0, I)), averaged over
the batch. beta follows a KL-annealing schedule; word dropout weakens the decoder's view of the
previous words so that it has to rely on z (Bowman et al., 2016, section 3.1).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn

from vaegen.core.config import AnnealConfig
from vaegen.core.tokenizer import BOS_ID, PAD_ID


def kl_per_dimension(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag(exp(logvar))) || N(0, I)) of each latent dimension: (B, L) -> (B, L), in nats."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag(exp(logvar))) || N(0, I)) per example: (B, L) -> (B,), in nats."""
    return kl_per_dimension(mu, logvar).sum(dim=-1)


def free_bits(kl: torch.Tensor, target: float, per_example: bool = False) -> torch.Tensor:
    """The KL term to optimise under free bits: per-dimension KLs (B, L) -> (B,).

    A dimension whose KL is below `target` nats costs `target` and gets no gradient, so the optimiser
    has no reason to push it to zero and the code stays in use. Per dimension over the batch (Kingma
    et al., 2016) a dimension is free while its batch-mean KL is below the target; per example (Li et
    al., 2019) each example's dimension is judged on its own. target 0 is the plain KL.
    """
    if target <= 0.0:
        return kl.sum(dim=-1)
    level = kl if per_example else kl.mean(dim=0, keepdim=True).expand_as(kl)
    return torch.where(level > target, kl, torch.full_like(kl, target)).sum(dim=-1)


ROW_QUANTUM = 128  # bfloat16 products pad their rows to a multiple of this


class LinearCrossEntropy(torch.autograd.Function):
    """NLL of `targets` under softmax(hidden @ weight.T + bias), per token, with the projection fused in.

    The gradient with respect to the logits, softmax - onehot, is formed in the forward pass in place of
    the logits, so backward is two matrix products: no log-softmax backward, no zero-filled gradient,
    one (N, V) buffer instead of three. The products run in `dtype` (bfloat16 uses AMX on recent Xeons);
    the softmax is always taken in at least float32, so the likelihood stays exact up to the products' rounding.

    In bfloat16 the rows are padded with zeros to a multiple of ROW_QUANTUM: oneDNN builds and caches a kernel for
    every new shape, and a batch's count of real tokens is new at nearly every step, so without it a long run's
    memory grew by the cache (a training process from 1.4 to 3.0 GB over 80 minutes). Padded rows have no
    gradient: they change nothing but the shape.
    """

    @staticmethod
    def forward(ctx, hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
                targets: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        exact = torch.promote_types(hidden.dtype, torch.float32)  # float32, or float64 where asked
        low_hidden, low_weight = hidden.to(dtype), weight.to(dtype)  # no copies when dtype is theirs already
        rows = hidden.size(0)
        if dtype == torch.bfloat16:  # (N', H), N' the next multiple of ROW_QUANTUM: few shapes, few cached kernels
            low_hidden = torch.nn.functional.pad(low_hidden, (0, 0, 0, -rows % ROW_QUANTUM))
        logits = torch.addmm(bias.to(dtype), low_hidden, low_weight.t()).to(exact)  # (N', V)
        logp = torch.log_softmax(logits, dim=-1)
        nll = -logp[:rows].gather(1, targets.unsqueeze(1)).squeeze(1)  # (N,)
        if any(ctx.needs_input_grad[:3]):
            grad = logp.exp_()  # softmax, in place of logp
            grad[torch.arange(rows, device=grad.device), targets] -= 1.0
            grad[rows:] = 0.0  # padding has no gradient
            ctx.save_for_backward(low_hidden, low_weight, grad)
            ctx.dtypes = (hidden.dtype, weight.dtype)
            ctx.rows = rows
        return nll

    @staticmethod
    def backward(ctx, grad_nll: torch.Tensor):
        low_hidden, low_weight, grad = ctx.saved_tensors
        hidden_dtype, weight_dtype = ctx.dtypes
        rows = ctx.rows
        grad[:rows].mul_(grad_nll.unsqueeze(1))  # (N', V), the logits' gradient; backward runs once: in place is safe
        low = grad.to(low_weight.dtype)
        grad_hidden = (low @ low_weight)[:rows].to(hidden_dtype)  # (N, H)
        grad_weight = (low.t() @ low_hidden).to(weight_dtype)  # (V, H)
        return grad_hidden, grad_weight, grad.sum(0).to(weight_dtype), None, None


def reconstruction_nll(hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, targets: torch.Tensor,
                       dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Summed token NLL per sentence: decoder states (B, T, H), output layer (V, H) and (V,), targets (B, T) -> (B,).

    Only real tokens are projected: padding costs nothing.
    """
    real = targets != PAD_ID  # (B, T)
    return per_sentence(LinearCrossEntropy.apply(hidden[real], weight, bias, targets[real], dtype), real)


def adaptive_reconstruction_nll(hidden: torch.Tensor, layer: nn.AdaptiveLogSoftmaxWithLoss, rank: torch.Tensor,
                                targets: torch.Tensor) -> torch.Tensor:
    """`reconstruction_nll` under an adaptive softmax: decoder states (B, T, H), the layer, each token's rank by
    frequency (V,) (the layer's class), targets (B, T) -> (B,). The layer scores the head for every token and a
    tail cluster only for the tokens in it, in float32 whatever the training precision: it is a fraction of a full
    layer's cost, and its clusters' row counts change at every step, which in bfloat16 would cache a kernel per
    shape (see LinearCrossEntropy)."""
    real = targets != PAD_ID
    with torch.autocast(hidden.device.type, enabled=False):
        logp = layer(hidden[real].float(), rank[targets[real]]).output  # (N,) log p of each target
    return per_sentence(-logp, real)


def per_sentence(nll: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Token NLLs (N,) of the real positions `real` (B, T) -> their sum per sentence (B,)."""
    rows = real.nonzero(as_tuple=True)[0]  # the sentence of each real token
    return torch.zeros(real.size(0), dtype=nll.dtype, device=nll.device).index_add_(0, rows, nll)


def kl_weight(step: int, config: AnnealConfig) -> float:
    """beta at a training step (0-based) for the configured schedule, in [0, beta_max]."""
    if config.schedule == "logistic":  # Bowman et al.: 1 / (1 + exp(-k (step - x0)))
        try:
            return config.beta_max / (1.0 + math.exp(-config.k * (step - config.x0)))
        except OverflowError:  # exp beyond ~709.78: beta is below 1e-308 of beta_max there, so 0
            return 0.0
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


def encoder_converged(losses: list[float], window: int = 15) -> bool:
    """The end of an aggressive inner loop (He et al., 2019): the encoder-only updates stop once the mean
    loss of the last `window` of them is no lower than that of the `window` before."""
    if len(losses) < 2 * window or len(losses) % window:
        return False
    recent, before = losses[-window:], losses[-2 * window : -window]
    return sum(recent) >= sum(before)


class LossTerms(NamedTuple):
    loss: torch.Tensor  # scalar: mean over the batch of rec + beta * (the KL term, free bits applied)
    rec: torch.Tensor  # (B,) reconstruction NLL per sentence
    kl: torch.Tensor  # (B,) the true KL per sentence, whatever the free bits


def vae_loss(rec: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, beta: float,
             free_bits_target: float = 0.0, free_bits_per_example: bool = False, kl_target: float = 0.0) -> LossTerms:
    """The batch loss from the reconstruction NLL rec (B,) (`SentenceVAE.token_nll`) and the posteriors
    mu, logvar (B, L): mean of rec + beta * KL term, the KL taken in float32 whatever the autocast.

    `kl_target` is free bits over the whole code as one group: the sentence's KL below it costs the target, so
    the model keeps that many nats without being told which dimensions must hold them (`free_bits_target` is
    per dimension); only one of the two is set."""
    per_dimension = kl_per_dimension(mu.float(), logvar.float())
    groups = per_dimension.sum(dim=-1, keepdim=True) if kl_target > 0.0 else per_dimension
    kl_term = free_bits(groups, kl_target or free_bits_target, free_bits_per_example)
    return LossTerms((rec + beta * kl_term).mean(), rec, per_dimension.sum(dim=-1))
