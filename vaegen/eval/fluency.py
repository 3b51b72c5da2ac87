"""Fluency judged from outside the generator: the perplexity of texts under an n-gram language model
trained on the real training text alone, beside the same judge's perplexity of held-out human text.

Format, distinct-n and the copy rate all score word salad as perfect, and the generator's own decoder
is no judge of its samples (it likes what it wrote). The judge here shares nothing with the model: an
interpolated absolute-discounting model (Ney et al. 1994; nltk's) of order 3 over the units of
`metrics.units` (characters of CJK text, else whitespace words), each text read after order - 1 <s>
and scored up to one </s>, which is counted. Order 3 and absolute discounting had the lowest held-out
perplexity of those measured on the Song ci lines (docs/BENCHMARKS.md, "Fluency and decoding
strategies"); nltk's Kneser-Ney scans every context at each query, too slow at a million units.

Units seen once in training are read as <UNK>, so an unseen unit costs what a rare one does. nltk
ends the recursion at the raw unigram frequencies, where a unit never seen (with no <UNK> mass in a
small corpus) has probability 0 and makes a whole set's perplexity infinite: here the unigrams are
discounted too and what they give up is spread over the vocabulary (`DiscountedToUniform`).

A low judge perplexity alone is no praise (a sampler that repeats the commonest phrase scores low),
so a `FluencyReport` sets it beside distinct-1/2 and self-BLEU, for the samples and for as many
human texts; `human_gap` measures how far a set of samples is from the human figures.

Fitting on a million units takes tens of seconds, so `cached_judge` keeps each judge (pickled) in
the cache (`files.cached`) under the hash of its training text and settings.
"""

from __future__ import annotations

import gc
import math
import pickle
import random
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from itertools import chain
from pathlib import Path
from typing import Any, NamedTuple

from vaegen.core import metrics
from vaegen.core.errors import VaegenError
from vaegen.core.files import cache_dir, cache_key, cached
from vaegen.core.tokenizer import is_cjk

try:
    import nltk
    from nltk.lm import Vocabulary
    from nltk.lm.models import InterpolatedLanguageModel
    from nltk.lm.smoothing import AbsoluteDiscounting
    from nltk.util import everygrams
except ImportError as error:
    raise VaegenError("the fluency judge needs nltk: pip install 'vaegen[fluency]'") from error

ORDER = 3  # units of context + 1
DISCOUNT = 0.75  # subtracted from every count, at every order (nltk's default)
UNK_CUTOFF = 2  # units seen fewer times in training are read as <UNK>
BOS, EOS = "<s>", "</s>"
CACHE_VERSION = "judge-1"  # bumped when a change of this module changes what is pickled


class DiscountedToUniform(AbsoluteDiscounting):
    """nltk's absolute discounting carried one level down: p(w) = max(c(w) - d, 0) / N + (d B / N) / |V|, B the
    types seen, |V| what can be predicted (the vocabulary with <UNK> and </s>, without <s>): no unit has
    probability 0, and p sums to 1 over V."""

    def unigram_score(self, word: str) -> float:
        unigrams = self.counts.unigrams
        total = unigrams.N()
        floor = self.discount * unigrams.B() / total / (len(self.vocab) - 1)  # the discounted mass, spread evenly
        return max(unigrams[word] - self.discount, 0.0) / total + floor


class JudgeModel(InterpolatedLanguageModel):
    """nltk's AbsoluteDiscountingInterpolated with `DiscountedToUniform` under the unigrams."""

    def __init__(self, order: int, **kwargs: Any) -> None:
        super().__init__(DiscountedToUniform, order, params={"discount": DISCOUNT}, **kwargs)


class Judge(NamedTuple):
    model: JudgeModel  # over units, <s>, </s> and <UNK>
    cjk: bool  # units are characters (CJK text) or whitespace words
    order: int

    @property
    def unit(self) -> str:
        return "character" if self.cjk else "word"


def padded(units: list[str], order: int) -> list[str]:
    """A text's units as the judge reads them: order - 1 <s>, the units, one </s>."""
    return [BOS] * (order - 1) + units + [EOS]


@contextmanager
def collector_paused() -> Iterator[None]:
    """Fitting (or unpickling) a judge makes millions of small objects, none in a cycle, which set off
    the cyclic garbage collector over and over for nothing: paused, the Song ci lines' judge took 32 s
    to fit instead of 54."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def train_judge(texts: Sequence[str], order: int = ORDER) -> Judge:
    """Fit a judge on `texts`: its units are characters when most of the text is CJK, else words."""
    if not texts:
        raise VaegenError("the fluency judge needs training text; got none")
    cjk = is_cjk(texts)
    sentences = [padded(metrics.units(text, cjk), order) for text in texts]
    counts = Counter(chain.from_iterable(sentences))
    counts.update({BOS: UNK_CUTOFF, EOS: UNK_CUTOFF})  # never read as <UNK>, however few the texts
    model = JudgeModel(order, vocabulary=Vocabulary(counts, unk_cutoff=UNK_CUTOFF))
    try:
        with collector_paused():  # n-grams that end in <s> are left out: <s> is given, never predicted
            model.fit([gram for gram in everygrams(sentence, max_len=order) if gram[-1] != BOS]
                      for sentence in sentences)
    except ValueError as error:  # nltk stops at nltk.lm.counter.MAX_NGRAMS distinct n-grams (10 million)
        raise VaegenError(f"the fluency judge cannot be fitted on this text ({error}); give it a part of the "
                          f"training text") from error
    return Judge(model, cjk, order)


def judge_key(texts: Sequence[str], order: int = ORDER) -> str:
    """What a cached judge is filed under: its training text and every setting that shapes it."""
    return cache_key(CACHE_VERSION, nltk.__version__, str(order), str(DISCOUNT), str(UNK_CUTOFF), "\n".join(texts))


def read_judge(path: Path) -> Judge | None:
    """A judge pickled in the cache (as trusted as the code that wrote it); None for one that cannot be read."""
    try:
        with path.open("rb") as handle, collector_paused():
            judge = pickle.load(handle)
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError, TypeError, ValueError):
        return None
    return judge if isinstance(judge, Judge) else None


def cached_judge(texts: Sequence[str], order: int = ORDER) -> Judge:
    """`train_judge(texts, order)`, read from the cache when it was fitted before, else fitted and cached."""
    path = cache_dir() / f"judge-{judge_key(texts, order)}.pickle"
    return cached(path, read_judge, lambda: train_judge(texts, order),
                  lambda handle, judge: pickle.dump(judge, handle, protocol=pickle.HIGHEST_PROTOCOL))[0]


def log2_likelihood(judge: Judge, text: str) -> tuple[float, int]:
    """log2 p(text) under the judge, its units and </s>, and how many predictions that is (units + 1)."""
    sequence = padded(metrics.units(text, judge.cjk), judge.order)
    context = judge.order - 1
    total = sum(judge.model.logscore(sequence[i], sequence[i - context : i]) for i in range(context, len(sequence)))
    return total, len(sequence) - context


def perplexity(judge: Judge, texts: Sequence[str]) -> float:
    """2 ** (-log2 p / predictions) over all the texts: per unit, one end of text counted per text."""
    if not texts:
        raise ValueError("perplexity of no texts")
    scored = [log2_likelihood(judge, text) for text in texts]
    return 2.0 ** (-sum(bits for bits, _ in scored) / sum(count for _, count in scored))


@dataclass(frozen=True)
class TextFigures:
    """One set of texts as the fluency report sees it."""

    texts: int  # how many texts the judge perplexity is over
    judge_ppl: float  # per unit, end of text counted
    diversity_texts: int  # how many texts distinct-n and self-BLEU are over (as many for samples and humans)
    distinct_1: float
    distinct_2: float
    self_bleu: float  # 0-100


def text_figures(judge: Judge, texts: Sequence[str], diverse: Sequence[str]) -> TextFigures:
    """The judge's perplexity of `texts`, distinct-1/2 and self-BLEU of `diverse` (a subset of the same size
    as the other side's, since both fall as a set grows)."""
    chosen = list(diverse)
    return TextFigures(len(texts), perplexity(judge, texts), len(chosen), metrics.distinct_n(chosen, 1, judge.cjk),
                       metrics.distinct_n(chosen, 2, judge.cjk), metrics.self_bleu(chosen, judge.cjk))


@dataclass(frozen=True)
class FluencyReport:
    order: int
    unit: str  # "character" or "word"
    samples: TextFigures
    human: TextFigures

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def rows(self) -> list[tuple[str, str]]:
        """Name and value lines for a report table."""
        samples, human = self.samples, self.human
        judged = (f"samples {samples.judge_ppl:.2f}, held-out lines {human.judge_ppl:.2f} per {self.unit} "
                  f"(all {human.texts:,}; end of sentence counted)")
        diversity = (f"distinct-1 {human.distinct_1:.3f}, distinct-2 {human.distinct_2:.3f}, "
                     f"self-BLEU {human.self_bleu:.2f}")
        return [(f"judge perplexity ({self.order}-gram)", judged),
                (f"held-out lines ({human.diversity_texts:,} drawn)", diversity)]


def fluency_report(judge: Judge, samples: Sequence[str], human: Sequence[str], seed: int = 0) -> FluencyReport:
    """Samples against human text: judge perplexity of every sample and every human text; distinct-n and
    self-BLEU of the samples and of as many human texts, drawn with `seed` (all of them if fewer)."""
    drawn = random.Random(seed).sample(list(human), min(len(samples), len(human)))
    return FluencyReport(judge.order, judge.unit, text_figures(judge, samples, samples),
                         text_figures(judge, human, drawn))


PPL_TOLERANCE = 1.15  # samples read as fluent as human text within a factor 1.15 of its judge perplexity
DISTINCT_2_TOLERANCE = 0.05  # and within 0.05 of its distinct-2


def human_gap(samples: TextFigures, human: TextFigures) -> float:
    """How far samples are from human text, in units of the tolerances above, by the farther of the two figures:
    max(|ln(ppl_s / ppl_h)| / ln 1.15, |distinct-2_s - distinct-2_h| / 0.05).

    At most 1 exactly when both figures are within tolerance. Perplexity is compared as a log ratio, so that
    half the human figure is as far as twice it; a sum of the two would let one figure far off be bought back
    by the other close. Infinite when the samples have no bigram at all.
    """
    if samples.distinct_2 <= 0.0:
        return math.inf
    return max(abs(math.log(samples.judge_ppl / human.judge_ppl)) / math.log(PPL_TOLERANCE),
               abs(samples.distinct_2 - human.distinct_2) / DISTINCT_2_TOLERANCE)
