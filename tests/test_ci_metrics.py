"""The measures of generated ci: rhyme from pinyin, rhyme consistency, format accuracy and copied clauses."""

import pytest

from vaegen.ci_metrics import copied_share, format_accuracy, mean_rhyme_consistency, rhyme, rhyme_consistency

HUANXISHA = "一曲新词酒一杯。去年天气旧亭台。夕阳西下几时回。无可奈何花落去，似曾相识燕归来。小园香径独徘徊。"


def test_a_rhyme_is_the_final_without_its_medial() -> None:
    assert rhyme("天") == rhyme("山") == rhyme("关") == "an"  # tian, shan, guan
    assert rhyme("香") == rhyme("江") == rhyme("光") == "ang"
    assert rhyme("雪") == rhyme("也") == "ê" != rhyme("歌")  # xue, ye: not the e of ge
    assert rhyme("流") == rhyme("楼") == "ou" and rhyme("回") == rhyme("杯") == "ei"
    assert rhyme("林") == "in" != rhyme("门")  # in keeps its i: it is the vowel, not a medial


def test_rhyme_consistency_counts_sentence_ends_only() -> None:
    # sentence ends 杯 台 回 来 徊: ei ai ei ai ai; 去 before the comma does not count
    assert rhyme_consistency(HUANXISHA) == pytest.approx(3 / 5)
    assert rhyme_consistency("明月几时有，把酒问青天。") is None  # one sentence end: nothing to agree with
    assert rhyme_consistency("春风吹绿野。千里共婵娟。") == 0.5
    assert mean_rhyme_consistency([HUANXISHA, "一。", "山。天。"]) == pytest.approx((0.6 + 1.0) / 2)


def test_format_accuracy_compares_clause_lengths_and_marks() -> None:
    form = "7。7。7。7，7。7。"
    assert format_accuracy([HUANXISHA, HUANXISHA.replace("，", "。"), HUANXISHA[1:]], [form] * 3) == pytest.approx(1 / 3)


def test_copied_clauses_are_found_verbatim_and_short_ones_are_not_counted() -> None:
    training = ["去年天气旧亭台。", "似曾相识燕归来"]
    assert copied_share([HUANXISHA], training) == (2, 6)
    assert copied_share(["一二三四。去年天气旧亭台。"], training, min_chars=5) == (1, 1)
    assert copied_share(["一二三四。"], training) == (0, 0)
