"""The fluency judge (vaegen.eval.fluency): an n-gram model of the training text that prefers real text to
shuffled, gives every text a finite perplexity, is the same fit after fit and from its cache, and
reports diversity figures that are what they must be for a repeated text."""

from __future__ import annotations

import math
import random
from pathlib import Path

import pytest
from conftest import chinese_lines, english_lines

pytest.importorskip("nltk")

from vaegen.core import metrics  # after the skip: vaegen.eval.fluency needs nltk
from vaegen.eval import fluency


@pytest.fixture(scope="module")
def songci_judge() -> fluency.Judge:
    return fluency.train_judge(chinese_lines(2000)[:1500])


def shuffled(texts: list[str], seed: int = 0) -> list[str]:
    """The same characters in a random order, cut into texts of the same lengths."""
    rng = random.Random(seed)
    pool = [ch for text in texts for ch in text]
    rng.shuffle(pool)
    out, start = [], 0
    for text in texts:
        out.append("".join(pool[start : start + len(text)]))
        start += len(text)
    return out


def test_the_judge_prefers_real_lines_to_their_characters_shuffled(songci_judge: fluency.Judge) -> None:
    lines = chinese_lines(2000)
    train, held_out = lines[:1500], lines[1500:]
    assert songci_judge.cjk and songci_judge.unit == "character" and songci_judge.order == fluency.ORDER
    own = fluency.perplexity(songci_judge, train)
    assert own < fluency.perplexity(songci_judge, shuffled(train)) / 3
    assert own < fluency.perplexity(songci_judge, held_out) < fluency.perplexity(songci_judge, shuffled(held_out))


def test_every_text_has_a_finite_perplexity_and_counts_its_end(songci_judge: fluency.Judge) -> None:
    bits, predictions = fluency.log2_likelihood(songci_judge, "明月几时有")
    assert predictions == 6 and bits < 0  # five characters and the end
    assert fluency.log2_likelihood(songci_judge, "")[1] == 1
    assert math.isfinite(fluency.perplexity(songci_judge, ["𠀀𠀁 unseen", "。"]))
    with pytest.raises(ValueError):
        fluency.perplexity(songci_judge, [])


@pytest.mark.parametrize("context", [(), ("the",), ("<s>", "<s>"), ("a", "dog"), ("never", "seen"), ("in", "the")])
def test_the_judge_is_a_distribution_over_what_it_can_predict(context: tuple[str, ...]) -> None:
    judge = fluency.train_judge(english_lines(60))
    predictable = [unit for unit in judge.model.vocab if unit != fluency.BOS]
    assert sum(judge.model.score(unit, context) for unit in predictable) == pytest.approx(1.0, abs=1e-9)
    assert min(judge.model.score(unit, context) for unit in predictable) > 0.0


def test_english_is_judged_by_words() -> None:
    lines = english_lines(300)
    judge = fluency.train_judge(lines[:250])
    assert not judge.cjk and judge.unit == "word"
    assert fluency.log2_likelihood(judge, "the cat sees the river .")[1] == 7  # six words and the end
    held_out = lines[250:]
    words_shuffled = [" ".join(random.Random(i).sample(line.split(), len(line.split()))) for i, line in
                      enumerate(held_out)]
    assert fluency.perplexity(judge, held_out) < fluency.perplexity(judge, words_shuffled)
    assert math.isfinite(fluency.perplexity(judge, ["a zebra paints the sky ."]))  # unseen words: <UNK>


def test_the_judge_is_deterministic_and_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VAEGEN_CACHE_DIR", str(tmp_path))
    lines = chinese_lines(600)
    train, held_out = lines[:500], lines[500:]
    first = fluency.perplexity(fluency.train_judge(train), held_out)
    assert fluency.perplexity(fluency.train_judge(train), held_out) == first
    assert fluency.perplexity(fluency.cached_judge(train), held_out) == first
    assert len(list(tmp_path.glob("judge-*.pickle"))) == 1

    def refit(*_: object) -> fluency.Judge:
        raise AssertionError("fitted again instead of read from the cache")

    monkeypatch.setattr(fluency, "train_judge", refit)
    assert fluency.perplexity(fluency.cached_judge(train), held_out) == first
    assert fluency.judge_key(train) != fluency.judge_key(train[:-1]) != fluency.judge_key(train, order=2)


def test_a_broken_cache_entry_is_fitted_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VAEGEN_CACHE_DIR", str(tmp_path))
    train = english_lines(100)
    (tmp_path / f"judge-{fluency.judge_key(train)}.pickle").write_bytes(b"not a pickle")
    assert fluency.perplexity(fluency.cached_judge(train), train) == fluency.perplexity(fluency.train_judge(train), train)


def test_a_text_past_nltks_limit_is_refused_with_advice(monkeypatch: pytest.MonkeyPatch) -> None:
    import nltk.lm.counter

    from vaegen.core.errors import VaegenError

    monkeypatch.setattr(nltk.lm.counter, "MAX_NGRAMS", 50)
    with pytest.raises(VaegenError, match="part of the training text"):
        fluency.train_judge(english_lines(100))


def test_a_repeated_text_has_the_diversity_it_must() -> None:
    judge = fluency.train_judge(english_lines(100))
    text = "the cat sees the river ."  # six words, five distinct; five bigrams, all distinct
    human = english_lines(100, seed=1)
    report = fluency.fluency_report(judge, [text] * 8, human, seed=3)
    assert report.samples.texts == report.samples.diversity_texts == 8
    assert report.samples.distinct_1 == pytest.approx(5 / 48)
    assert report.samples.distinct_2 == pytest.approx(5 / 40)
    assert report.samples.self_bleu == pytest.approx(100.0)
    assert report.samples.judge_ppl == pytest.approx(fluency.perplexity(judge, [text]))
    assert report.human.texts == 100 and report.human.diversity_texts == 8
    drawn = random.Random(3).sample(human, 8)
    assert report.human.distinct_2 == pytest.approx(metrics.distinct_n(drawn, 2, cjk=False))
    assert report.human.self_bleu == pytest.approx(metrics.self_bleu(drawn, cjk=False))
    assert report.as_dict()["samples"]["self_bleu"] == pytest.approx(100.0)


def test_the_gap_to_human_text_is_the_farther_figure_in_units_of_its_tolerance() -> None:
    def figures(ppl: float, distinct_2: float) -> fluency.TextFigures:
        return fluency.TextFigures(10, ppl, 10, 0.5, distinct_2, 10.0)

    human = figures(100.0, 0.8)
    assert fluency.human_gap(human, human) == 0.0
    assert fluency.human_gap(figures(50.0, 0.8), human) == pytest.approx(fluency.human_gap(figures(200.0, 0.8), human))
    assert fluency.human_gap(figures(115.0, 0.8), human) == pytest.approx(1.0)
    assert fluency.human_gap(figures(100.0, 0.75), human) == pytest.approx(1.0)
    assert fluency.human_gap(figures(110.0, 0.78), human) < 1.0 < fluency.human_gap(figures(100.0, 0.74), human)
    assert fluency.human_gap(figures(130.0, 0.8), human) == fluency.human_gap(figures(130.0, 0.79), human)
    assert fluency.human_gap(figures(100.0, 0.0), human) == math.inf
