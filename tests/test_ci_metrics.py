"""The measures of generated ci: rhyme by pinyin or by the Pingshui rhyme book, rhyme consistency, the rhyme
classes that decoding holds sentence ends to, format accuracy and copied clauses."""

import pytest
import torch

from vaegen.core.config import ModelConfig, TokenizerConfig
from vaegen.core.errors import VaegenError
from vaegen.core.model import SentenceVAE
from vaegen.core.tokenizer import Tokenizer
from vaegen.generate.decoding import Strategy, generate
from vaegen.songci import rhymes as lexicon
from vaegen.songci.ci_metrics import copied_share, format_accuracy, mean_rhyme_consistency, rhyme_consistency
from vaegen.songci.form_mask import HeldForm, form_masks
from vaegen.songci.forms import rhyme_steps
from vaegen.songci.rhymes import DEFAULT_SCHEME, rhyme, rhyme_classes, rhymes
from vaegen.songci.tune_book import TuneBook

HUANXISHA = "一曲新词酒一杯。去年天气旧亭台。夕阳西下几时回。无可奈何花落去，似曾相识燕归来。小园香径独徘徊。"


def test_a_pinyin_rhyme_is_the_final_without_its_medial() -> None:
    assert rhyme("天") == rhyme("山") == rhyme("关") == "an"  # tian, shan, guan
    assert rhyme("香") == rhyme("江") == rhyme("光") == "ang"
    assert rhyme("雪") == rhyme("也") == "ê" != rhyme("歌")  # xue, ye: not the e of ge
    assert rhyme("流") == rhyme("楼") == "ou" and rhyme("回") == rhyme("杯") == "ei"
    assert rhyme("林") == "in" != rhyme("门")  # in keeps its i: it is the vowel, not a medial
    assert DEFAULT_SCHEME == "pinyin" and rhymes("天") == rhymes("天", "pinyin") == ("an",)


def shares(a: str, b: str) -> bool:
    return bool(set(rhymes(a, "pingshui")) & set(rhymes(b, "pingshui")))


def test_pingshui_rhymes_are_the_groups_of_the_book_in_simplified_script() -> None:
    # rhymes of the Song that modern finals lose: ei ai, ê a, eng ong
    for a, b in [("杯", "来"), ("回", "徊"), ("斜", "家"), ("花", "斜"), ("风", "红")]:
        assert shares(a, b) and rhyme(a) != rhyme(b)
    # and modern rhymes the book keeps apart: other groups (先 删, 东 冬), other tones (入 上, 平 去)
    for a, b in [("天", "山"), ("东", "冬"), ("雪", "也"), ("寒", "岸")]:
        assert not shares(a, b) and rhyme(a) == rhyme(b)
    assert rhymes("杯", "pingshui") == ("上平聲十灰",)
    assert rhymes("看", "pingshui") == ("上平聲十四寒", "去聲十五翰")  # two readings, two groups, the book's order
    assert rhymes("台", "pingshui") == ("上平聲四支", "上平聲十灰")  # the groups of 台 and of 臺, merged
    assert rhymes("臺", "pingshui") == ("上平聲十灰",)  # the book's own script is kept too
    assert rhymes("做", "pingshui") == ("做",)  # a character the book lacks rhymes with itself alone
    with pytest.raises(ValueError, match="unknown rhyme scheme"):
        rhymes("天", "cilin")  # type: ignore[arg-type]


def test_rhyme_consistency_counts_sentence_ends_only() -> None:
    # sentence ends 杯 台 回 来 徊: ei ai ei ai ai; 去 before the comma does not count
    assert rhyme_consistency(HUANXISHA) == rhyme_consistency(HUANXISHA, "pinyin") == pytest.approx(3 / 5)
    assert rhyme_consistency("明月几时有，把酒问青天。") is None  # one sentence end: nothing to agree with
    assert rhyme_consistency("春风吹绿野。千里共婵娟。") == 0.5
    assert mean_rhyme_consistency([HUANXISHA, "一。", "山。天。"]) == pytest.approx((0.6 + 1.0) / 2)


def test_rhyme_consistency_by_the_book_counts_a_character_in_each_of_its_groups() -> None:
    assert rhyme_consistency(HUANXISHA, "pingshui") == 1.0  # 杯 台 回 来 徊: all in 十灰
    # 看 rhymes with 寒 (寒) and with 岸 (翰), which do not rhyme with each other: two of three share a group
    assert rhyme_consistency("一二看。三四寒。五六岸。", "pingshui") == pytest.approx(2 / 3)
    assert rhyme_consistency("一二看。三四寒。五六岸。", "pinyin") == 1.0
    assert mean_rhyme_consistency([HUANXISHA, "山。天。"], "pingshui") == pytest.approx((1.0 + 0.5) / 2)


def test_a_missing_rhyme_book_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    lexicon.pingshui_book.cache_clear()
    monkeypatch.setattr(lexicon, "find_spec", lambda name: None)
    with pytest.raises(VaegenError, match=r"pip install 'vaegen\[songci\]'"):
        rhyme_consistency("山。天。", "pingshui")
    monkeypatch.undo()
    lexicon.pingshui_book.cache_clear()
    assert rhyme_consistency("山。天。", "pingshui") == 0.5


LINES = [HUANXISHA, "明月几时有，把酒问青天。", "看寒岸山，东冬雪也。", "斜阳家花中。"] * 20


def test_rhyme_classes_give_each_character_piece_one_rhyme() -> None:
    tokenizer, _ = Tokenizer.train(LINES, TokenizerConfig(model_type="char", vocab_size=200))
    piece = tokenizer.sp.piece_to_id
    for scheme in ("pinyin", "pingshui"):
        classes = rhyme_classes(tokenizer, scheme)
        assert classes[piece("。")] == classes[piece("，")] == -1 and (classes >= 0).sum() > 30
        for a in "杯台天花看":
            for b in "来时山斜寒":
                assert (classes[piece(a)] == classes[piece(b)]) == (rhyme(a, scheme) == rhyme(b, scheme))
    pingshui = rhyme_classes(tokenizer, "pingshui")
    # 台 is held to its first group, 支 (with 时), though it rhymes with 杯 in 灰 as well: narrower, never wrong
    assert pingshui[piece("杯")] == pingshui[piece("来")] == pingshui[piece("回")] != pingshui[piece("台")]
    assert pingshui[piece("台")] == pingshui[piece("时")]
    mask = HeldForm(torch.ones(3, tokenizer.vocab_size, dtype=torch.bool), 0, frozenset({1}), pingshui).mask(
        1, torch.tensor([piece("杯"), piece("天")]))
    allowed = [{tokenizer.sp.id_to_piece(i) for i in row.nonzero().flatten().tolist()} for row in mask]
    assert {"来", "徊", "杯"} <= allowed[0] and not {"台", "天", "时"} & allowed[0]
    assert "天" in allowed[1] and "山" not in allowed[1]  # 先 and 删, though both end in an


def test_decoding_held_to_a_scheme_rhymes_fully_under_it() -> None:
    tokenizer, _ = Tokenizer.train(LINES, TokenizerConfig(model_type="char", vocab_size=200))
    torch.manual_seed(0)
    model = SentenceVAE(ModelConfig(embed_dim=8, hidden_dim=12, latent_dim=4, embed_dropout=0.0),
                        tokenizer.vocab_size).eval()
    z = torch.randn(8, 4, generator=torch.Generator().manual_seed(1))
    book = TuneBook(None, tokenizer, torch.device("cpu"))
    assert book.hold("7。7。", True, scheme="pingshui") is book.hold("7。7。", True, scheme="pingshui")
    for scheme in ("pinyin", "pingshui"):
        form = book.hold("7。7。7。7，7。7。", True, scheme=scheme)
        assert form is not None and form.anchor == rhyme_steps("7。7。7。7，7。7。")[0]
        assert form.classes is not None and torch.equal(form.classes, rhyme_classes(tokenizer, scheme))
        decoded = generate(model, z, 60, Strategy(), torch.Generator().manual_seed(0), held=form)
        assert all(rhyme_consistency(text, scheme) == 1.0 for text in tokenizer.decode(decoded.ids))
    free = HeldForm(form_masks("7。7。7。7，7。7。", tokenizer))
    decoded = generate(model, z, 60, Strategy(), torch.Generator().manual_seed(0), held=free)
    assert min(score or 0.0 for score in map(rhyme_consistency, tokenizer.decode(decoded.ids))) < 1.0


def test_format_accuracy_compares_clause_lengths_and_marks() -> None:
    form = "7。7。7。7，7。7。"
    assert format_accuracy([HUANXISHA, HUANXISHA.replace("，", "。"), HUANXISHA[1:]], [form] * 3) == pytest.approx(1 / 3)


def test_copied_clauses_are_found_verbatim_and_short_ones_are_not_counted() -> None:
    training = ["去年天气旧亭台。", "似曾相识燕归来"]
    assert copied_share([HUANXISHA], training) == (2, 6)
    assert copied_share(["一二三四。去年天气旧亭台。"], training, min_chars=5) == (1, 1)
    assert copied_share(["一二三四。"], training) == (0, 0)
