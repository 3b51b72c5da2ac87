"""The evaluation math as pure functions on tensors and strings: testable on tiny inputs.

- `iw_bound`: the importance-weighted bound of Burda et al. (2016) from K log weights per sentence;
  -iw_bound is an estimate of -log p(x) that never exceeds -ELBO in expectation and tightens as K grows.
- `mutual_information`: I(x; z) under the encoder, with q(z) the aggregate posterior of the evaluated
  set, as estimated by He et al. (2019); `mi_ceiling` and `mi_saturated` say when N sentences are too
  few for it to tell anything.
- `active_units`: latent dimensions whose posterior mean varies across the data (Burda et al. 2016).
- `distinct_n`, `self_bleu`: diversity of generated text; BLEU itself is sacrebleu's.
"""

from __future__ import annotations

import math
from collections import Counter

import torch

LOG_2PI = math.log(2.0 * math.pi)
MI_SATURATION_SHARE = 0.95  # the share of log N from which an MI estimate counts as saturated (`mi_saturated`)


def gaussian_log_density(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mu, diag(exp(logvar))), summed over the last dimension; broadcasts."""
    return -0.5 * (LOG_2PI + logvar + (z - mu).pow(2) / logvar.exp()).sum(dim=-1)


def iw_bound(log_weights: torch.Tensor) -> torch.Tensor:
    """log (1/K sum_k w_k) per row: (N, K) log weights log p(x, z_k) - log q(z_k | x) -> (N,)."""
    return torch.logsumexp(log_weights, dim=-1) - math.log(log_weights.size(-1))


def mutual_information(mu: torch.Tensor, logvar: torch.Tensor, z: torch.Tensor, chunk: int = 256) -> float:
    """I(x; z) = E_x E_q(z|x) [log q(z|x) - log q(z)], q(z) = the mean of the N posteriors.

    mu, logvar (N, L): the posteriors of the evaluated set; z (N, L): one draw from each. The first
    term is the posteriors' negative entropy in closed form; log q(z_i) is a log-mean-exp over all N
    posteriors, taken in chunks of rows so memory stays at chunk x N x L.
    """
    n, dims = mu.shape
    if dims == 0:
        return 0.0
    neg_entropy = (-0.5 * dims * (LOG_2PI + 1.0) - 0.5 * logvar.sum(dim=-1)).mean()
    log_qz = torch.cat([
        torch.logsumexp(gaussian_log_density(rows.unsqueeze(1), mu.unsqueeze(0), logvar.unsqueeze(0)), dim=1)
        for rows in z.split(chunk)
    ]) - math.log(n)
    return (neg_entropy - log_qz.mean()).item()


def mi_ceiling(sentences: int) -> float:
    """log N, the most that `mutual_information` over N sentences can give (beyond sampling noise).

    log q(z_i) averages the N posteriors, its own among them, so log q(z_i) >= log q(z_i|x_i) - log N:
    each sentence adds at most log N. 0 for no sentences.
    """
    return math.log(sentences) if sentences > 0 else 0.0


def mi_saturated(mi: float, ceiling: float, share: float = MI_SATURATION_SHARE) -> bool:
    """Whether an MI estimate sits at its ceiling log N: mi >= share * ceiling (and the ceiling is above 0).

    The gap log N - MI is E_i log(1 + r_i), r_i the density the other posteriors put at z_i relative to
    its own: near the ceiling the posteriors are merely told apart, and the estimate cannot rise however
    much more the code carries (a KL falling from 94 to 11 nats under a flat MI). The margin is relative
    because the estimate's own noise there, sqrt(L / 2N) nats from sampling log q(z_i|x_i), reaches 0.17
    at L = 32, N = 565: 5% of log N (0.32 nats there, 0.42 at N = 4096) stays above it, where a fixed
    0.1 nats would miss saturation about one time in three.
    """
    return ceiling > 0.0 and mi >= share * ceiling


def active_units(mu: torch.Tensor, threshold: float = 0.01) -> int:
    """How many latent dimensions have Var_x(E_q[z | x]) >= threshold: mu (N, L) -> count."""
    if mu.size(0) < 2 or mu.size(1) == 0:
        return 0
    return int((mu.double().var(dim=0) >= threshold).sum())


def units(text: str, cjk: bool) -> list[str]:
    """The units that perplexity and distinct-n count: characters for CJK text, else whitespace words."""
    return [ch for ch in text if not ch.isspace()] if cjk else text.split()


def distinct_n(texts: list[str], n: int, cjk: bool) -> float:
    """Distinct n-grams over all n-grams of the texts (Li et al., 2016); 0 when there are none."""
    grams: Counter[tuple[str, ...]] = Counter()
    for text in texts:
        tokens = units(text, cjk)
        grams.update(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))
    total = sum(grams.values())
    return len(grams) / total if total else 0.0


def bleu_tokenizer(cjk: bool) -> str:
    return "zh" if cjk else "13a"


def corpus_bleu(hypotheses: list[str], references: list[str], cjk: bool) -> float:
    """sacrebleu's corpus BLEU (0-100) with one reference per hypothesis."""
    from sacrebleu.metrics import BLEU  # imported here: training and generation never need it

    return BLEU(tokenize=bleu_tokenizer(cjk)).corpus_score(hypotheses, [references]).score


def self_bleu(texts: list[str], cjk: bool) -> float:
    """Mean sentence BLEU (0-100) of each text against all the others as references (Zhu et al., 2018).

    Equal to averaging sacrebleu's `sentence_score(text, others)` over the texts, but linear in their
    number: each n-gram's two largest counts (and who holds the largest) give its clipping count
    against "all but me" without re-reading N - 1 references per text.
    """
    from sacrebleu.metrics import BLEU
    from sacrebleu.metrics.helpers import extract_all_word_ngrams

    if len(texts) < 2:
        return 0.0
    bleu = BLEU(tokenize=bleu_tokenizer(cjk), effective_order=True)
    grams, lengths = zip(*(extract_all_word_ngrams(bleu.tokenizer(text), 1, bleu.max_ngram_order) for text in texts))
    top: dict[tuple[str, ...], tuple[int, int, int]] = {}  # n-gram -> (largest count, its holder, second largest)
    for holder, counts in enumerate(grams):
        for gram, count in counts.items():
            first, who, second = top.get(gram, (0, -1, 0))
            top[gram] = (count, holder, first) if count > first else (first, who, max(second, count))
    scores = []
    for i, (counts, length) in enumerate(zip(grams, lengths)):
        correct, total = [0] * bleu.max_ngram_order, [0] * bleu.max_ngram_order
        for gram, count in counts.items():
            first, who, second = top[gram]
            correct[len(gram) - 1] += min(count, second if who == i else first)
            total[len(gram) - 1] += count
        reference = _closest_length(length, lengths[:i] + lengths[i + 1 :])
        scores.append(bleu.compute_bleu(correct, total, length, reference, smooth_method="exp",
                                        effective_order=True).score)
    return sum(scores) / len(scores)


def _closest_length(length: int, others: tuple[int, ...]) -> int:
    """sacrebleu's effective reference length: the closest one, the shorter on a tie."""
    return min(others, key=lambda other: (abs(other - length), other))


def principal_axes(codes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, list[float]]:
    """codes (N, L), N >= 2 -> their mean (L,), the two directions of most variance (2, L), and the share of
    the variance along each. With one latent dimension the second axis is zero."""
    mean = codes.mean(dim=0)
    _, singular, vh = torch.linalg.svd(codes - mean, full_matrices=False)
    variance = singular**2
    axes = torch.zeros(2, codes.size(1), dtype=codes.dtype)
    shares = [0.0, 0.0]
    for i in range(min(2, len(vh))):
        axes[i] = vh[i]
        shares[i] = float(variance[i] / variance.sum()) if variance.sum() > 0 else 0.0
    return mean, axes, shares
