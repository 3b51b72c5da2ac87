"""Tune forms: reading the form of a ci, the most common form of a tune, and the decoding masks."""

import pytest
import torch

from vaegen.config import TokenizerConfig
from vaegen.tokenizer import EOS_ID, Tokenizer
from vaegen.tunes import form_masks, form_of, rhyme_steps, slots, tunes_of

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


def test_each_tune_gets_its_most_common_form_and_share() -> None:
    ci = [("浣溪沙", HUANXISHA)] * 3 + [("浣溪沙", "一二三。")] + [("如梦令", "一二。"), ("如梦令", "一。")]
    tunes = tunes_of(ci)
    assert [(t.name, t.count, t.form, t.share) for t in tunes] == [
        ("浣溪沙", 4, "7。7。7。7，7。7。", 0.75), ("如梦令", 2, "1。", 0.5)]  # a tie goes to the first form by text


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
    from vaegen.config import ModelConfig
    from vaegen.decoding import GREEDY, Form, Strategy, generate
    from vaegen.model import SentenceVAE

    lines = [HUANXISHA, "明月几时有，把酒问青天。", "寻寻觅觅，冷冷清清、凄凄惨惨戚戚。"] * 20
    tokenizer, _ = Tokenizer.train(lines, TokenizerConfig(model_type="char", vocab_size=200))
    torch.manual_seed(0)
    model = SentenceVAE(ModelConfig(embed_dim=8, hidden_dim=12, latent_dim=4, embed_dropout=0.0), tokenizer.vocab_size).eval()
    z = torch.randn(6, 4, generator=torch.Generator().manual_seed(1))
    form = "7。7。7。7，7。7。"
    for strategy in (GREEDY, Strategy(), Strategy(top_p=0.5), Strategy(beam=3)):
        decoded = generate(model, z, 10, strategy, torch.Generator().manual_seed(0), form=Form(form_masks(form, tokenizer)))
        assert [form_of(text) for text in tokenizer.decode(decoded.ids)] == [form] * 6


def test_a_tune_book_answers_ids_draws_names_and_forms() -> None:
    from vaegen.errors import VaegenError
    from vaegen.tunes import Labels, Tune, TuneBook

    lines = [HUANXISHA, "明月几时有，把酒问青天。", "寻寻觅觅，冷冷清清、凄凄惨惨戚戚。"] * 20
    tokenizer, _ = Tokenizer.train(lines, TokenizerConfig(model_type="char", vocab_size=200))
    book = TuneBook(Labels([Tune("浣溪沙", 3, "7。7。7。7，7。7。", 1.0), Tune("如梦令", 1, "2，1。", 1.0)]),
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
    form = book.form(2, rhyme=False)
    assert form is not None and book.form(2, rhyme=False) is form
    assert torch.equal(form.allowed, form_masks("2，1。", tokenizer))
    assert book.form(0, rhyme=False) is None  # the shared "other" label has no form


def test_a_model_without_tunes_refuses_one() -> None:
    from vaegen.errors import VaegenError
    from vaegen.tunes import TuneBook

    tokenizer, _ = Tokenizer.train([HUANXISHA] * 20, TokenizerConfig(model_type="char", vocab_size=60))
    book = TuneBook(None, tokenizer, torch.device("cpu"))
    assert book.ids(None, 3) is None and book.draw(3, torch.Generator()) is None
    with pytest.raises(VaegenError, match="trained without tunes"):
        book.ids("浣溪沙", 3)
