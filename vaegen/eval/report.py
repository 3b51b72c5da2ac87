"""Held-out figures of `vaegen eval`, beside the cheap validation of training (`train.validation`).

`evaluate` reports what the papers report: an importance-weighted estimate of
-log p(x) with K samples per sentence (Burda et al., 2016), the perplexity it implies per word or per
character, mutual information and active units, reconstruction BLEU, and for samples from the prior
distinct-n, self-BLEU and the share copied from the training lines; given a judge (`vaegen.eval.fluency`), the
perplexity of those samples and of the held-out lines under an n-gram model of the training text. All
ratios are per sentence (nats) unless named otherwise. Mutual information is reported with its ceiling
log N (N the sentences it was estimated over, `metrics.mi_ceiling`): an estimate at the ceiling says
only that N is too small.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import torch
from tqdm import tqdm

from vaegen.core import metrics
from vaegen.core.data import ReadsForms, TokenIds, eval_batches
from vaegen.core.devices import resolve_precision
from vaegen.core.model import SentenceVAE, reparameterize
from vaegen.core.objectives import kl_divergence
from vaegen.core.tokenizer import is_cjk
from vaegen.generate.generator import SentenceGenerator
from vaegen.songci.form_inputs import FormReader
from vaegen.songci.forms import form_of
from vaegen.songci.tunes import form_probability
from vaegen.train.validation import describe_mi

if TYPE_CHECKING:  # vaegen.eval.fluency needs nltk, an optional extra
    from vaegen.eval.fluency import FluencyReport, Judge

IW_TOKENS = 8192  # decoder tokens scored at once by the importance-weighted estimate: bounds memory


@dataclass
class CorpusScores:
    """Per-sentence scores from `score_corpus`, all in the same (length-sorted) order."""

    rec: torch.Tensor  # (N,) E_q[-log p(x|z)], averaged over the K samples
    kl: torch.Tensor  # (N,) KL(q(z|x) || p(z)), closed form
    nll: torch.Tensor  # (N,) -log p(x) estimated with K importance samples
    mu: torch.Tensor  # (N, L)
    logvar: torch.Tensor  # (N, L)
    z: torch.Tensor  # (N, L) one posterior draw per sentence
    tokens: int  # pieces + one </s> per sentence


@torch.no_grad()
def score_corpus(model: SentenceVAE, sentences: Sequence[TokenIds], samples: int, device: torch.device,
                 seed: int = 0, precision: str = "fp32", batch_size: int = 32, progress: bool = False,
                 labels: Sequence[int] | None = None, form_reader: ReadsForms | None = None) -> CorpusScores:
    """Score each sentence with K = `samples` draws z_k ~ q(z|x): log w_k = log p(x|z_k) + log p(z_k) - log q(z_k|x)
    (for a conditional model, given its label c: p(x|z_k, c) and q(z_k|x, c), so the estimate is of -log p(x|c)).

    Sentences are repeated K times in chunks of at most IW_TOKENS decoder tokens, so memory does not
    grow with K. A model without a latent code (latent_dim 0) has one exact weight per sentence.
    `precision` "fp32", "bf16" or "auto" (`devices.resolve_precision`): that of the decoder passes.
    """
    low = resolve_precision(precision, device) == "bf16"
    was_training = model.training
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    dtype = torch.bfloat16 if low else torch.float32
    latent = model.config.latent_dim
    samples = samples if latent else 1
    recs, kls, nlls, mus, logvars, draws = [], [], [], [], [], []
    tokens = 0
    batches = eval_batches(sentences, batch_size, labels, form_reader)
    for batch in tqdm(batches, desc=f"scoring (K={samples})", unit="batch", disable=not progress, dynamic_ncols=True):
        batch = batch.to(device)
        rows, width = batch.tokens.shape
        mu, logvar = model.encode(batch.tokens, batch.lengths, batch.labels)
        mu, logvar = mu.float(), logvar.float()
        per_chunk = max(1, IW_TOKENS // (rows * width))
        log_weights, rec_sum, done = [], torch.zeros(rows, device=device), 0
        while done < samples:
            k = min(per_chunk, samples - done)
            eps = torch.randn(rows, k, latent, generator=generator).to(device)
            z = reparameterize(mu.unsqueeze(1), logvar.unsqueeze(1), eps)  # (B, k, L)
            labels_k = None if batch.labels is None else batch.labels.repeat_interleave(k, dim=0)
            code = model.code(z.reshape(rows * k, latent), labels_k)
            tokens_k = batch.tokens.repeat_interleave(k, dim=0)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=low):
                form_k = None if batch.form_ids is None else batch.form_ids.repeat_interleave(k, dim=0)
                hidden, _ = model.decoder_states(batch.decoder_inputs.repeat_interleave(k, dim=0), code,
                                                 model.initial_state(code), form_k)
            rec = model.token_nll(hidden.float(), tokens_k, dtype).view(rows, k)
            prior = metrics.gaussian_log_density(z, torch.zeros_like(z), torch.zeros_like(z))
            posterior = metrics.gaussian_log_density(z, mu.unsqueeze(1), logvar.unsqueeze(1))
            log_weights.append(-rec + prior - posterior)
            rec_sum += rec.sum(dim=1)
            if done == 0:
                draws.append(z[:, 0])
            done += k
        nlls.append(-metrics.iw_bound(torch.cat(log_weights, dim=1)))
        recs.append(rec_sum / samples)
        kls.append(kl_divergence(mu, logvar))
        mus.append(mu)
        logvars.append(logvar)
        tokens += int(batch.lengths.sum())
    model.train(was_training)
    return CorpusScores(torch.cat(recs), torch.cat(kls), torch.cat(nlls), torch.cat(mus), torch.cat(logvars),
                        torch.cat(draws), tokens)


@dataclass
class Evaluation:
    """What `vaegen eval` prints; per-sentence figures are means over the evaluated lines, in nats."""

    sentences: int
    tokens: int  # tokenizer pieces + one </s> per sentence
    units: int  # what perplexity is per: words (or characters for CJK text) + one end of sentence per line
    unit: str  # "word" or "character"
    iw_samples: int
    precision: str  # "fp32" or "bf16" ("auto" resolved): the arithmetic of the decoder passes behind nll, elbo and rec
    nll: float  # importance-weighted estimate of -log p(x)
    ppl: float  # exp(nll total / units)
    elbo: float  # -ELBO at beta = 1 (an upper bound on nll)
    rec: float
    kl: float
    mi: float  # I(x; z), He et al. (2019)
    mi_ceiling: float  # log N, N the sentences scored: no estimate of I(x; z) from them can exceed it
    au: int  # active units
    latent_dim: int
    bleu: float  # corpus BLEU of greedy reconstructions from the posterior mean (0-100)
    samples: int  # sentences drawn from the prior for the figures below
    distinct_1: float
    distinct_2: float
    self_bleu: float  # 0-100
    copy_rate: float | None  # share of samples identical to a training line (None: no training lines given)
    seconds: float
    form_nll: float = 0.0  # -log p(form | tune) per ci, included in nll and elbo (form-aware models)
    fluency: FluencyReport | None = None  # judge perplexity and diversity, samples beside held-out lines (with a judge)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def table(self) -> list[str]:
        """The figures as aligned "name  value" lines, for people to read."""
        copy = "n/a (pass --train)" if self.copy_rate is None else f"{100 * self.copy_rate:.1f}%"
        rows = [
            ("sentences", f"{self.sentences:,} ({self.tokens:,} tokens, {self.units:,} {self.unit}s with </s>)"),
            (f"NLL (IW, K={self.iw_samples})", f"{self.nll:.2f} nats/sentence"),
            ("perplexity", f"{self.ppl:.2f} per {self.unit} (end of sentence counted)"),
            ("-ELBO", f"{self.elbo:.2f} nats/sentence"),
            ("reconstruction", f"{self.rec:.2f} nats/sentence"),
            ("KL", f"{self.kl:.2f} nats/sentence"),
            ("mutual information", f"{describe_mi(self.mi, self.mi_ceiling)} nats"),
            ("active units", f"{self.au} of {self.latent_dim}"),
            ("reconstruction BLEU", f"{self.bleu:.2f}"),
            (f"prior samples ({self.samples:,})", (f"distinct-1 {self.distinct_1:.3f}, distinct-2 "
                                                  f"{self.distinct_2:.3f}, self-BLEU {self.self_bleu:.2f}, "
                                                  f"copies of training lines {copy}")),
        ]
        if self.fluency is not None:
            rows += self.fluency.rows()
        width = max(len(name) for name, _ in rows)
        return [f"{name:<{width}}  {value}" for name, value in rows]


def form_nll(model: SentenceGenerator, lines: list[str], tunes: list[str] | None) -> float:
    """-log p(form(x) | tune) summed over the lines, with p(form | tune) the smoothed training frequency
    (`tunes.form_probability`): what a form-aware model, which scores p(x | tune, form(x)), leaves out of
    -log p(x | tune) = -log p(form(x) | tune) - log p(x | tune, form(x)). 0 for any other model."""
    if not model.config.model.form_dim or model.labels is None or tunes is None:
        return 0.0
    known = model.labels
    return -sum(math.log(form_probability(known.tune(label), form_of(text)))
                for label, text in zip(known.ids(tunes), lines))


def evaluate(model: SentenceGenerator, lines: list[str], *, iw_samples: int = 500, prior_samples: int = 1000,
             train_lines: list[str] | None = None, seed: int = 0, precision: str = "fp32",
             progress: bool = False, tunes: list[str] | None = None, judge: Judge | None = None) -> Evaluation:
    """Every figure of `vaegen eval` for the held-out `lines` (with their `tunes`, for a conditional model);
    `train_lines` enable the copy rate, a `judge` (`fluency.cached_judge`) the fluency figures; `precision`
    "fp32", "bf16" or "auto" is that of the likelihood passes."""
    started = time.perf_counter()
    precision = resolve_precision(precision, model.device)
    ids = model.tokenizer.encode(lines)  # not truncated: the likelihood covers every token
    labels = model.labels.ids(tunes) if model.labels is not None and tunes is not None else None
    form_reader = FormReader(model.tokenizer) if model.config.model.form_dim else None
    scores = score_corpus(model.model, ids, iw_samples, model.device, seed, precision, progress=progress,
                          labels=labels, form_reader=form_reader)
    form_total = form_nll(model, lines, tunes)
    n = len(lines)
    cjk = is_cjk(lines)
    units = sum(len(metrics.units(line, cjk)) + 1 for line in lines)
    nll_total = scores.nll.sum().item() + form_total
    reconstructions = [g.text for g in model.decode(model.encode(lines, tunes).mu, tune=tunes)]
    drawn = [g.text for g in model.sample(prior_samples, seed=seed)]
    copied = None
    if train_lines is not None:
        seen = set(train_lines)
        copied = sum(text in seen for text in drawn) / len(drawn)
    fluency = None
    if judge is not None:
        from vaegen.eval.fluency import fluency_report

        fluency = fluency_report(judge, drawn, lines, seed)
    return Evaluation(
        sentences=n, tokens=scores.tokens, units=units, unit="character" if cjk else "word",
        iw_samples=iw_samples if model.latent_dim else 1, precision=precision, nll=nll_total / n,
        ppl=math.exp(nll_total / units),
        elbo=(scores.rec + scores.kl).mean().item() + form_total / n, form_nll=form_total / n,
        rec=scores.rec.mean().item(), kl=scores.kl.mean().item(),
        mi=metrics.mutual_information(scores.mu, scores.logvar, scores.z), mi_ceiling=metrics.mi_ceiling(n),
        au=metrics.active_units(scores.mu),
        latent_dim=model.latent_dim, bleu=metrics.corpus_bleu(reconstructions, lines, cjk), samples=len(drawn),
        distinct_1=metrics.distinct_n(drawn, 1, cjk), distinct_2=metrics.distinct_n(drawn, 2, cjk),
        self_bleu=metrics.self_bleu(drawn, cjk), copy_rate=copied, seconds=time.perf_counter() - started,
        fluency=fluency,
    )
