"""Held-out figures at beta = 1: reconstruction NLL, KL and -ELBO per sentence, and the perplexity bound.

-ELBO = rec + KL is an upper bound on -log p(x); exp(-ELBO summed / tokens) is therefore an upper
bound on the per-token perplexity (tokens include </s>). The one-sample estimate uses a fixed noise
seed, so the same model on the same data always reports the same numbers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch

from vaegen.data import TokenIds, eval_batches
from vaegen.model import SentenceVAE
from vaegen.objectives import kl_divergence, reconstruction_nll


@dataclass
class ElboReport:
    sentences: int
    tokens: int  # pieces + one </s> per sentence
    rec: float  # nats per sentence
    kl: float  # nats per sentence
    elbo: float  # -ELBO, nats per sentence
    ppl: float  # exp(-ELBO total / tokens): an upper bound on per-token perplexity

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


@torch.no_grad()
def evaluate_elbo(model: SentenceVAE, sentences: Sequence[TokenIds], batch_size: int, device: torch.device,
                  seed: int = 0) -> ElboReport:
    was_training = model.training
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    rec_total = kl_total = 0.0
    tokens = 0
    for batch in eval_batches(sentences, batch_size):
        batch = batch.to(device)
        eps = torch.randn(batch.tokens.size(0), model.config.latent_dim, generator=generator).to(device)
        out = model(batch.tokens, batch.lengths, batch.decoder_inputs, eps)
        rec_total += reconstruction_nll(out.hidden, model.output.weight, model.output.bias, batch.tokens).sum().item()
        kl_total += kl_divergence(out.mu, out.logvar).sum().item()
        tokens += int(batch.lengths.sum())
    model.train(was_training)
    n = len(sentences)
    elbo_total = rec_total + kl_total
    return ElboReport(n, tokens, rec_total / n, kl_total / n, elbo_total / n, math.exp(elbo_total / tokens))
