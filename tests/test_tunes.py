"""Tune forms: reading the form of a ci, the forms of a tune and how likely each is, and the decoding masks."""

import pytest
import torch

from vaegen.core.config import TokenizerConfig
from vaegen.core.labels import Tune
from vaegen.core.tokenizer import EOS_ID, Tokenizer
from vaegen.songci.form_mask import HeldForm, form_masks
from vaegen.songci.forms import form_of, rhyme_steps, slots
from vaegen.songci.tunes import RARE_FORMS, form_probability, tunes_of

HUANXISHA = "一曲新词酒一杯。去年天气旧亭台。夕阳西下几时回。无可奈何花落去，似曾相识燕归来。小园香径独徘徊。"


def test_form_of_a_ci_and_its_slots() -> None:
    assert form_of(HUANXISHA) == "7。7。7。7，7。7。"
    assert form_of("寻寻觅觅，冷冷清清、凄凄惨惨戚戚。tail") == "4，4、6。"
    assert slots("2，1。") == [None, None, "，", None, "。"]
    for bad in ("", "7", "7。x", "，"):
        with pytest.raises(ValueError, match="not a form"):
            slots(bad)


def test_rhymes_fall_on_the_last_character_of_each_sentence() -> None:
    assert rhyme_steps("7。7。7。7，7。7。") == [6, 14, 22, 38, 46]  # the comma's clause does not rhyme
    assert rhyme_steps("2，1。3？") == [3, 7]
    assert rhyme_steps("4，4、6，") == []


def test_each_tune_keeps_every_form_seen_twice_most_common_first() -> None:
    ci = ([("浣溪沙", HUANXISHA)] * 3 + [("浣溪沙", "一二三。")] + [("如梦令", "一二。"), ("如梦令", "一。")]
          + [("水调歌头", "一二。")] * 2 + [("水调歌头", "一。")] * 2 + [("水调歌头", "一二三。")] * 3
          + [("水调歌头", "一，")])
    tunes = tunes_of(ci)
    assert [(t.name, t.count, t.forms) for t in tunes] == [
        ("水调歌头", 8, (("3。", 3), ("1。", 2), ("2。", 2))),  # ties by form; the form seen once is left out
        ("浣溪沙", 4, (("7。7。7。7，7。7。", 3),)),
        ("如梦令", 2, (("1。", 1),)),  # the most common is kept even when seen once; a tie goes to the first by text
    ]
    assert (tunes[1].form, tunes[1].share, tunes[2].form, tunes[2].share) == ("7。7。7。7，7。7。", 0.75, "1。", 0.5)


def test_form_probability_smooths_the_training_counts() -> None:
    tune = Tune("水调歌头", 9, (("3。", 3), ("1。", 2), ("2。", 2)))  # 2 ci in forms seen once
    assert form_probability(tune, "3。") == pytest.approx(3 / 10) and form_probability(tune, "2。") == pytest.approx(2 / 10)
    rare = form_probability(tune, "5，5。")  # seen once or never: one of RARE_FORMS sharing (2 + 1) / 10
    assert rare == pytest.approx(3 / 10 / RARE_FORMS) and rare == form_probability(tune, "9。")
    listed = sum(form_probability(tune, form) for form, _ in tune.forms)
    assert listed == pytest.approx(7 / 10) and listed + RARE_FORMS * rare == pytest.approx(1.0)
    whole = Tune("浣溪沙", 4, (("7。7。7。7，7。7。", 4),))  # every ci in a listed form: unseen forms still get some
    assert 0 < form_probability(whole, "7。") < form_probability(whole, "7。7。7。7，7。7。") == pytest.approx(4 / 5)
    assert form_probability(Tune("(other)", 0), "7。") == pytest.approx(1 / RARE_FORMS)


def test_masks_let_only_characters_then_the_mark_then_the_end() -> None:
    lines = [HUANXISHA, "明月几时有，把酒问青天。", "寻寻觅觅，冷冷清清、凄凄惨惨戚戚。"] * 20
    tokenizer, _ = Tokenizer.train(lines, TokenizerConfig(model_type="char", vocab_size=200))
    masks = form_masks("2，1。", tokenizer)
    assert masks.shape == (6, tokenizer.vocab_size)
    comma, stop = tokenizer.sp.piece_to_id("，"), tokenizer.sp.piece_to_id("。")
    for step in (0, 1, 3):
        allowed = {tokenizer.sp.id_to_piece(i) for i in masks[step].nonzero().flatten().tolist()}
        assert "明" in allowed and not allowed & set("，。、") and not any(p.startswith("<") for p in allowed)
    assert masks[2].nonzero().flatten().tolist() == [comma] and masks[4].nonzero().flatten().tolist() == [stop]
    assert masks[5].nonzero().flatten().tolist() == [EOS_ID]
    assert torch.equal(masks[0], masks[3])


def test_decoding_under_a_form_writes_exactly_that_form() -> None:
    from vaegen.core.config import ModelConfig
    from vaegen.core.model import SentenceVAE
    from vaegen.generate.decoding import GREEDY, Strategy, generate

    lines = [HUANXISHA, "明月几时有，把酒问青天。", "寻寻觅觅，冷冷清清、凄凄惨惨戚戚。"] * 20
    tokenizer, _ = Tokenizer.train(lines, TokenizerConfig(model_type="char", vocab_size=200))
    torch.manual_seed(0)
    model = SentenceVAE(ModelConfig(embed_dim=8, hidden_dim=12, latent_dim=4, embed_dropout=0.0), tokenizer.vocab_size).eval()
    z = torch.randn(6, 4, generator=torch.Generator().manual_seed(1))
    form = "7。7。7。7，7。7。"
    for strategy in (GREEDY, Strategy(), Strategy(top_p=0.5), Strategy(beam=3)):
        decoded = generate(model, z, 10, strategy, torch.Generator().manual_seed(0), held=HeldForm(form_masks(form, tokenizer)))
        assert [form_of(text) for text in tokenizer.decode(decoded.ids)] == [form] * 6


def test_a_tune_book_answers_ids_draws_names_and_forms() -> None:
    from vaegen.core.errors import VaegenError
    from vaegen.core.labels import Labels
    from vaegen.songci.tune_book import TuneBook

    lines = [HUANXISHA, "明月几时有，把酒问青天。", "寻寻觅觅，冷冷清清、凄凄惨惨戚戚。"] * 20
    tokenizer, _ = Tokenizer.train(lines, TokenizerConfig(model_type="char", vocab_size=200))
    book = TuneBook(Labels([Tune("浣溪沙", 3, (("7。7。7。7，7。7。", 3),)), Tune("如梦令", 1, (("2，1。", 1),))]),
                    tokenizer, torch.device("cpu"))
    assert book.ids("浣溪沙", 2) == [1, 1] and book.ids(["如梦令", "unseen"], 2) == [2, 0]
    assert book.name(2) == "如梦令" and book.tune(1).count == 3
    for bad in (None, "unseen"):
        with pytest.raises(VaegenError, match="tune"):
            book.ids(bad, 2)
    with pytest.raises(ValueError, match="1 tunes for 2 texts"):
        book.ids(["如梦令"], 2)
    drawn = book.draw(4000, torch.Generator().manual_seed(0))
    assert drawn is not None and set(drawn) == {1, 2} and drawn.count(1) / len(drawn) == pytest.approx(0.75, abs=0.03)
    form = book.hold("2，1。", rhyme=False)
    assert form is not None and book.hold("2，1。", rhyme=False) is form  # built once
    assert torch.equal(form.allowed, form_masks("2，1。", tokenizer))
    assert book.hold("", rhyme=False) is None and book.forms([2, 0], None, None) == ["2，1。", ""]  # "other": no form


def test_a_tune_book_draws_forms_by_frequency_and_names_them_by_rank() -> None:
    from vaegen.core.errors import VaegenError
    from vaegen.core.labels import Labels
    from vaegen.songci.tune_book import TuneBook

    tokenizer, _ = Tokenizer.train([HUANXISHA] * 20, TokenizerConfig(model_type="char", vocab_size=60))
    forms = (("3。", 3), ("1。", 1))
    book = TuneBook(Labels([Tune("水调歌头", 4, forms), Tune("如梦令", 2, (("2，1。", 2),))]), tokenizer,
                    torch.device("cpu"))
    labels = [1] * 2000 + [2] * 3
    drawn = book.draw_forms(labels, torch.Generator().manual_seed(0))
    assert drawn[-3:] == ["2，1。"] * 3 and set(drawn[:2000]) == {"3。", "1。"}
    assert drawn[:2000].count("3。") / 2000 == pytest.approx(0.75, abs=0.03)
    assert drawn == book.draw_forms(labels, torch.Generator().manual_seed(0))  # the seed reproduces them
    one = torch.Generator().manual_seed(1)
    assert book.draw_forms([2, 2], one) == ["2，1。"] * 2  # a tune of one form draws nothing:
    assert torch.equal(one.get_state(), torch.Generator().manual_seed(1).get_state())  # the stream is untouched
    assert [book.resolve(1, rank) for rank in (1, 2)] == ["3。", "1。"] and book.resolve(1, "5，5。") == "5，5。"
    for rank in (0, 3):
        with pytest.raises(VaegenError, match="水调歌头 has 2 forms; give a rank from 1 to 2"):
            book.resolve(1, rank)
    with pytest.raises(VaegenError, match="如梦令 has 1 form; give a rank from 1 to 1"):
        book.resolve(2, 2)
    with pytest.raises(VaegenError, match="not a form"):
        book.resolve(1, "7x")


def test_a_model_without_tunes_refuses_one() -> None:
    from vaegen.core.errors import VaegenError
    from vaegen.songci.tune_book import TuneBook

    tokenizer, _ = Tokenizer.train([HUANXISHA] * 20, TokenizerConfig(model_type="char", vocab_size=60))
    book = TuneBook(None, tokenizer, torch.device("cpu"))
    assert book.ids(None, 3) is None and book.draw(3, torch.Generator()) is None
    with pytest.raises(VaegenError, match="trained without tunes"):
        book.ids("浣溪沙", 3)
