"""The validation the training loop runs: reconstruction NLL, KL, -ELBO at beta = 1, mutual information and the
active units of the held-out lines, from one posterior sample per sentence with a fixed noise seed, so that the
same model on the same data always reports the same numbers. Mutual information is reported with its ceiling
log N (N the sentences it was estimated over, `metrics.mi_ceiling`): an estimate at the ceiling says only that
N is too small.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch

from vaegen.core import metrics
from vaegen.core.data import ReadsForms, TokenIds, eval_batches
from vaegen.core.model import SentenceVAE
from vaegen.core.objectives import kl_divergence

MI_SENTENCES = 4096  # validation MI is O(N^2 L): a larger set is subsampled evenly


@dataclass
class ElboReport:
    sentences: int
    tokens: int  # pieces + one </s> per sentence
    rec: float  # nats per sentence
    kl: float  # nats per sentence
    elbo: float  # -ELBO, nats per sentence
    ppl: float  # exp(-ELBO total / tokens): an upper bound on per-token perplexity
    au: int = 0  # active units: latent dimensions whose posterior mean varies (Var >= 0.01)
    mi: float = 0.0  # I(x; z) over (at most MI_SENTENCES of) the scored sentences, nats
    mi_ceiling: float = 0.0  # log of how many sentences the MI was estimated over; 0: not recorded (older reports)

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)

    def mi_text(self) -> str:
        """The MI for a log line, with its ceiling and a warning when it sits there."""
        return f"MI {describe_mi(self.mi, self.mi_ceiling)}"


def describe_mi(mi: float, ceiling: float) -> str:
    """e.g. "6.51 (≤ log 565 = 6.34: saturated, score more sentences)"; the bare figure when no ceiling is known."""
    if ceiling <= 0.0:
        return f"{mi:.2f}"
    bound = f"≤ log {round(math.exp(ceiling))} = {ceiling:.2f}"
    if metrics.mi_saturated(mi, ceiling):
        return f"{mi:.2f} ({bound}: saturated, score more sentences)"
    return f"{mi:.2f} ({bound})"


@torch.no_grad()
def evaluate_elbo(model: SentenceVAE, sentences: Sequence[TokenIds], batch_size: int, device: torch.device,
                  seed: int = 0, labels: Sequence[int] | None = None,
                  form_reader: ReadsForms | None = None) -> ElboReport:
    """One posterior draw per sentence at beta = 1 (a form-aware model reads each sentence's form ids, from
    `form_reader`)."""
    was_training = model.training
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    rec_total = kl_total = 0.0
    tokens = 0
    means, logvars, draws = [], [], []
    for batch in eval_batches(sentences, batch_size, labels, form_reader):
        batch = batch.to(device)
        eps = torch.randn(batch.tokens.size(0), model.config.latent_dim, generator=generator).to(device)
        out = model(batch.tokens, batch.lengths, batch.decoder_inputs, eps, batch.labels, batch.form_ids)
        rec_total += model.token_nll(out.hidden, batch.tokens).sum().item()
        kl_total += kl_divergence(out.mu, out.logvar).sum().item()
        tokens += int(batch.lengths.sum())
        means.append(out.mu)
        logvars.append(out.logvar)
        draws.append(out.z)
    model.train(was_training)
    n = len(sentences)
    elbo_total = rec_total + kl_total
    mu, logvar, z = (torch.cat(parts).float() for parts in (means, logvars, draws))
    every = math.ceil(n / MI_SENTENCES)  # batches run short to long: an even stride keeps every length
    mu_mi, logvar_mi, z_mi = mu[::every], logvar[::every], z[::every]
    return ElboReport(n, tokens, rec_total / n, kl_total / n, elbo_total / n, math.exp(elbo_total / tokens),
                      metrics.active_units(mu), metrics.mutual_information(mu_mi, logvar_mi, z_mi),
                      metrics.mi_ceiling(len(mu_mi)))
