"""The conditional VAE: labelled corpora ('tune<TAB>ci'), the label in both encoder and decoder, the
tunes a checkpoint knows with their forms, and generation that follows a tune's form (the one asked
by rank or written out, one drawn by frequency, or the most common), from the library and the CLI."""

import json
from pathlib import Path

import pytest
import torch
from conftest import ROOT, TINY
from test_cli import assert_user_error, run_in_process

import vaegen
from vaegen.core import checkpoint
from vaegen.core.config import ModelConfig, load_config
from vaegen.core.data import collate
from vaegen.core.errors import VaegenError
from vaegen.core.labels import Labels
from vaegen.core.model import SentenceVAE
from vaegen.songci.ci_metrics import rhyme_consistency
from vaegen.songci.forms import form_of, slots
from vaegen.songci.rhymes import rhyme
from vaegen.songci.tunes import learn_labels, tunes_of

CI_TRAIN = ROOT / "data" / "songci" / "ci.train.tsv"
VARIED = "少年游"  # the one tune of the fixture's training ci with two forms seen at least twice (6 and 3 of 11 ci)
CI_OVERRIDES = ["model.label_dim=8", "data.max_length=120", "data.min_label_count=2", "tokenizer.model_type=char",
                "tokenizer.vocab_size=2000", "train.epochs=1"]


def ci_rows(n: int = 300) -> list[tuple[str, str]]:
    with CI_TRAIN.open(encoding="utf-8") as handle:
        return [tuple(line.rstrip("\n").split("\t", 1)) for line, _ in zip(handle, range(n))]  # type: ignore[misc]


@pytest.fixture(scope="session")
def ci_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny conditional model of whole ci by tune, trained once (seconds)."""
    from vaegen.train.loop import fit

    out = tmp_path_factory.mktemp("ci") / "ci.pt"
    rows = ci_rows()
    train, valid = rows[:270], rows[270:]
    fit(load_config(TINY, CI_OVERRIDES), [t for _, t in train], [t for _, t in valid], out, torch.device("cpu"),
        progress=False, log=lambda _: None, train_labels=[n for n, _ in train], valid_labels=[n for n, _ in valid])
    return out


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> list[str]:
    from vaegen.cli import run

    code = run(list(args))
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return captured.out.splitlines()


def test_common_labels_get_their_own_id_and_the_rest_share_one() -> None:
    names = ["a", "b", "a", "c", "a", "b"]
    labels = learn_labels(names, ["一二，三。"] * 6, min_count=2)
    assert [t.name for t in labels.known] == ["a", "b"] and len(labels) == 3
    assert labels.ids(["a", "b", "c", "never seen"]) == [1, 2, Labels.OTHER, Labels.OTHER]
    assert labels.tune(1).form == "2，1。" and labels.tune(Labels.OTHER).form == ""
    assert Labels.from_payload(labels.as_payload()).known == labels.known
    with pytest.raises(VaegenError, match="unknown tune 'c'"):
        labels.find("c")


def test_the_label_conditions_both_the_posterior_and_the_decoder() -> None:
    torch.manual_seed(0)
    config = ModelConfig(embed_dim=8, hidden_dim=12, latent_dim=4, label_dim=3, embed_dropout=0.0)
    model = SentenceVAE(config, 20, labels=3).eval()
    batch = collate([[5, 6, 7], [5, 6, 7]], [1, 2])
    posterior = model.encode(batch.tokens, batch.lengths, batch.labels)
    assert not torch.allclose(posterior.mu[0], posterior.mu[1])
    z = torch.zeros(2, 4)
    code = model.code(z, batch.labels)
    assert code.shape == (2, 7) and torch.equal(code[:, :4], z)
    logits, _ = model.decode(batch.decoder_inputs, code, model.initial_state(code))
    assert not torch.allclose(logits[0], logits[1])  # the same z, another tune: another distribution
    with pytest.raises(ValueError, match="conditioned on labels"):
        model.encode(batch.tokens, batch.lengths)
    language_model = SentenceVAE(ModelConfig(embed_dim=8, hidden_dim=12, latent_dim=0, label_dim=3), 20, labels=3)
    out = language_model(batch.tokens, batch.lengths, batch.decoder_inputs, None, batch.labels)
    assert out.z.shape == (2, 0) and out.hidden.shape == (2, 4, 12)  # a label-conditioned language model


def test_a_conditional_checkpoint_stores_its_tunes(ci_checkpoint: Path) -> None:
    payload = checkpoint.read(ci_checkpoint)
    assert payload["version"] == checkpoint.VERSION
    known = Labels.from_payload(payload["labels"]).known
    counts: dict[str, int] = {}
    for name, _ in ci_rows()[:270]:
        counts[name] = counts.get(name, 0) + 1
    assert [(t.name, t.count) for t in known] == sorted(((n, c) for n, c in counts.items() if c >= 2),
                                                        key=lambda item: (-item[1], item[0]))
    assert checkpoint.load(ci_checkpoint).labels is not None


def test_a_checkpoint_stores_every_form_of_a_tune_seen_twice(ci_checkpoint: Path) -> None:
    rows = checkpoint.read(ci_checkpoint)["labels"]  # read with torch.load(weights_only=True): plain values
    known = Labels.from_payload(rows).known
    assert known == [t for t in tunes_of(ci_rows()[:270]) if t.count >= 2]
    varied = next(t for t in known if t.name == VARIED)
    assert varied.forms == (("7。5。4，4，5。7，3、3。4，4，5。", 6), ("7。5。4，4，5。7，5。4，4，5。", 3))
    assert next(r for r in rows if r["name"] == VARIED)["forms"] == [[form, n] for form, n in varied.forms]


def test_a_checkpoint_written_before_forms_reads_as_one_form_per_tune(ci_checkpoint: Path, tmp_path: Path) -> None:
    old = Labels.from_payload([{"name": "浣溪沙", "count": 708, "form": "7。7。7。7，7。7。", "share": 0.959}])
    assert old.known[0].forms == (("7。7。7。7，7。7。", 679),) and old.known[0].share == pytest.approx(0.959, abs=1e-3)
    payload = checkpoint.read(ci_checkpoint)
    rows = [{key: value for key, value in row.items() if key != "forms"} for row in payload["labels"]]
    written_before = tmp_path / "old.pt"  # as a checkpoint of an earlier vaegen wrote it: no "forms"
    torch.save({**payload, "labels": rows}, written_before)
    loaded = checkpoint.load(written_before).labels
    assert loaded is not None and all(len(t.forms) == 1 for t in loaded.known)
    assert [(t.name, t.count, t.form) for t in loaded.known] == [(r["name"], r["count"], r["form"]) for r in rows]


def test_ci_follow_the_form_of_their_tune(ci_checkpoint: Path, capsys: pytest.CaptureFixture[str]) -> None:
    c = str(ci_checkpoint)
    tunes = [json.loads(line) for line in cli(capsys, "tunes", "--json", "-c", c)]
    assert tunes[0]["count"] >= tunes[-1]["count"] and len(cli(capsys, "tunes", "--top", "2", "-c", c)) == 2
    first = tunes[0]
    for line in cli(capsys, "sample", "--tune", first["tune"], "-n", "4", "--seed", "0", "-c", c):
        assert form_of(line) == first["form"]
    model = vaegen.load(ci_checkpoint, "cpu")
    rows = [json.loads(line) for line in cli(capsys, "sample", "-n", "8", "--seed", "1", "--json", "-c", c)]
    assert len({r["tune"] for r in rows}) > 1  # tunes drawn by frequency
    assert all(form_of(r["text"]) == r["form"] and r["form"] in dict(model.labels.find(r["tune"])[1].forms)
               for r in rows)
    plain = cli(capsys, "sample", "-n", "8", "--seed", "1", "-c", c)
    assert plain == [f"{r['tune']}\t{r['text']}" for r in rows]
    for strategy in (vaegen.Strategy(greedy=True), vaegen.Strategy(beam=3)):
        assert all(form_of(g.text) == first["form"] for g in model.sample(3, strategy, tune=first["tune"], seed=2))


def test_rhymes_hold_every_sentence_end_to_the_first(ci_checkpoint: Path, tiny_checkpoint: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    model = vaegen.load(ci_checkpoint, "cpu")
    tune = next(t for t in model.labels.known if t.form.count("。") >= 3)
    for strategy in (vaegen.Strategy(rhyme=True), vaegen.Strategy(beam=2, rhyme=True)):
        for g in model.sample(4, strategy, tune=tune.name, seed=5):
            assert form_of(g.text) == tune.form and rhyme_consistency(g.text) == 1.0
    free = [rhyme_consistency(g.text) for g in model.sample(20, tune=tune.name, seed=5)]
    assert min(score for score in free if score is not None) < 1.0  # without --rhyme the untrained model does not rhyme
    positions = slots(tune.form)
    prefix = "".join("春" if slot is None else slot for slot in positions[: positions.index("。") + 1])
    for g in model.complete(prefix, n=3, strategy=vaegen.Strategy(rhyme=True), tune=tune.name, seed=1):
        # the first sentence, in the prefix, sets the rhyme of the rest
        assert g.text.startswith(prefix) and rhyme_consistency(g.text) == 1.0 and rhyme(g.text[-2]) == rhyme("春")
    for g in model.complete("春", n=3, strategy=vaegen.Strategy(rhyme=True), tune=tune.name, seed=1):
        assert rhyme_consistency(g.text) == 1.0  # the first rhyme still to come
    assert_user_error(run_in_process(capsys, "sample", "--rhyme", "-c", str(tiny_checkpoint)), "rhymes need a tune")


def test_interpolation_reconstruction_and_eval_within_tunes(ci_checkpoint: Path, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    c = str(ci_checkpoint)
    model = vaegen.load(ci_checkpoint, "cpu")
    tune = model.labels.known[0]
    a, b = [text for name, text in ci_rows() if name == tune.name][:2]
    path = cli(capsys, "interpolate", a, b, "--tune", tune.name, "--steps", "4", "-c", c)
    assert len(path) == 4 and all(form_of(text) == tune.form for text in path)
    tsv = tmp_path / "ci.tsv"
    tsv.write_text("".join(f"{name}\t{text}\n" for name, text in ci_rows()[270:]), encoding="utf-8")
    rows = [json.loads(line) for line in cli(capsys, "reconstruct", "--input", str(tsv), "--json", "-c", c)]
    assert [r["tune"] for r in rows[:3]] == [name if name in {t.name for t in model.labels.known} else "(other)"
                                             for name, _ in ci_rows()[270:273]]
    report = json.loads(cli(capsys, "eval", str(tsv), "-k", "3", "--samples", "4", "--json", "--no-progress",
                            "-c", c)[0])
    assert report["sentences"] == 30 and report["nll"] > 0 and report["kl"] > 0


def test_tunes_name_lists_the_forms_of_one_tune(ci_checkpoint: Path, capsys: pytest.CaptureFixture[str]) -> None:
    c = str(ci_checkpoint)
    first, second = "1\t7。5。4，4，5。7，3、3。4，4，5。\t6\t55%", "2\t7。5。4，4，5。7，5。4，4，5。\t3\t27%"
    assert cli(capsys, "tunes", VARIED, "-c", c) == [first, second]
    assert cli(capsys, "tunes", VARIED, "--top", "1", "-c", c) == [first]
    rows = [json.loads(line) for line in cli(capsys, "tunes", VARIED, "--json", "-c", c)]
    assert rows[1] == {"rank": 2, "form": "7。5。4，4，5。7，5。4，4，5。", "count": 3, "share": 0.2727}
    listing = {line.split("\t")[0]: line.split("\t")[1:] for line in cli(capsys, "tunes", "-c", c)}
    assert listing[VARIED] == ["11", "7。5。4，4，5。7，3、3。4，4，5。", "55%", "2"] and listing["玉楼春"][3] == "1"
    assert json.loads(cli(capsys, "tunes", "--json", "--top", "1", "-c", c)[0])["forms"] == 1
    shipped = cli(capsys, "tunes", "浣溪沙", "-c", str(checkpoint.BUNDLED_TUNES))  # every form seen twice
    assert shipped[0] == "1\t7。7。7。7，7。7。\t679\t96%" and len(shipped) >= 3
    assert [int(line.split("\t")[2]) for line in shipped] == sorted((int(line.split("\t")[2]) for line in shipped),
                                                                   reverse=True)
    assert_user_error(run_in_process(capsys, "tunes", "无此调", "-c", c), "unknown tune '无此调'")


def test_every_command_writes_the_form_asked_by_rank_or_written_out(ci_checkpoint: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    c = str(ci_checkpoint)
    model = vaegen.load(ci_checkpoint, "cpu")
    first, second = (form for form, _ in model.labels.find(VARIED)[1].forms)
    text = next(text for name, text in ci_rows()[:270] if name == VARIED and form_of(text) == first)
    for asked, form in (("2", second), (first, first)):
        common = ["--tune", VARIED, "--form", asked, "-c", c]
        assert all(form_of(line) == form for line in cli(capsys, "sample", "-n", "6", "--seed", "0", *common))
        rows = [json.loads(line) for line in cli(capsys, "sample", "-n", "3", "--json", *common)]
        assert all(r["form"] == form and form_of(r["text"]) == form for r in rows)
        for command in (["interpolate", "--random", "--steps", "3"], ["complete", "春", "-n", "3"], ["reconstruct", text],
                        ["sample", "--near", text, "-n", "2"]):
            assert all(form_of(line) == form for line in cli(capsys, *command, *common)), command
    from vaegen.cli import run

    code = run(["sample", "--tune", VARIED, "--form", "4，4。", "-n", "3", "-c", c])
    out, err = capsys.readouterr()
    assert code == 0 and all(form_of(line) == "4，4。" for line in out.splitlines())
    assert "warning: the forms this model knows of 少年游 (`vaegen tunes 少年游`) do not include 4，4。" in err
    for strategy in (vaegen.Strategy(), vaegen.Strategy(beam=2)):
        assert all(form_of(g.text) == second == g.form for g in model.sample(3, strategy, tune=VARIED, form=2, seed=0))
    # without a form: reconstruct and near keep the text's own, interpolate and complete take the most common
    other = next(text for name, text in ci_rows()[:270] if name == VARIED and form_of(text) == second)
    assert [g.form for g in model.reconstruct([text, other], tune=VARIED)] == [first, second]
    assert {g.form for g in model.near(other, 3, tune=VARIED, seed=0)} == {second}
    assert {g.form for g in model.interpolate(text, other, 3, tune=VARIED)} == {first}
    assert {g.form for g in model.complete("春", 2, tune=VARIED, seed=0)} == {first}
    assert [g.text for g in model.complete(text, 2, tune=VARIED, seed=0)] == [text, text]  # a prefix of the whole form


def test_sampling_draws_the_forms_by_frequency_and_the_seed_reproduces_them(
        ci_checkpoint: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["sample", "--tune", VARIED, "-n", "16", "--seed", "4", "--json", "-c", str(ci_checkpoint)]
    rows = [json.loads(line) for line in cli(capsys, *args)]
    forms = dict(vaegen.load(ci_checkpoint, "cpu").labels.find(VARIED)[1].forms)
    assert {r["form"] for r in rows} == set(forms) and all(form_of(r["text"]) == r["form"] for r in rows)
    assert [json.loads(line) for line in cli(capsys, *args)] == rows


def test_form_mistakes_end_in_one_line(ci_checkpoint: Path, tiny_checkpoint: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    c = str(ci_checkpoint)
    assert_user_error(run_in_process(capsys, "sample", "--form", "1", "-c", c), "--form needs --tune")
    for rank in ("0", "3"):
        assert_user_error(run_in_process(capsys, "sample", "--tune", VARIED, "--form", rank, "-c", c),
                          "少年游 has 2 forms; give a rank from 1 to 2")
    assert_user_error(run_in_process(capsys, "sample", "--tune", VARIED, "--form", "7x。", "-c", c),
                      "'7x。' is neither a rank nor a form")
    assert_user_error(run_in_process(capsys, "complete", "春春春春春春春春", "--tune", VARIED, "--form", "1", "-c", c),
                      "does not fit the form 7。5。")
    assert_user_error(run_in_process(capsys, "sample", "--tune", VARIED, "--form", "1", "-c", str(tiny_checkpoint)),
                      "trained without tunes")
    with pytest.raises(VaegenError, match="a form belongs to a tune"):
        vaegen.load(ci_checkpoint, "cpu").reconstruct(["一二。"], tune=["玉楼春"], form=1)


def test_tune_mistakes_end_in_one_line(ci_checkpoint: Path, tiny_checkpoint: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    c, tiny = str(ci_checkpoint), str(tiny_checkpoint)
    assert_user_error(run_in_process(capsys, "sample", "--tune", "无此调", "-c", c), "unknown tune '无此调'")
    assert_user_error(run_in_process(capsys, "interpolate", "一二。", "三四。", "-c", c), "pass --tune NAME")
    assert_user_error(run_in_process(capsys, "sample", "--tune", "浣溪沙", "-c", tiny), "trained without tunes")
    assert_user_error(run_in_process(capsys, "tunes", "-c", tiny), "trained without tunes")
    tune = vaegen.load(ci_checkpoint, "cpu").labels.known[0].name
    assert_user_error(run_in_process(capsys, "complete", "，", "--tune", tune, "-c", c), "does not fit the form")


def test_a_plain_corpus_is_refused_by_a_conditional_preset(english_corpus: Path, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "m.pt"
    result = run_in_process(capsys, "train", str(english_corpus), "--config", str(TINY), "--set", "model.label_dim=4",
                            "--out", str(out), "--no-progress")
    assert_user_error(result, "line 1 is not 'label<TAB>text'")
    assert not out.exists()


def test_a_conditional_run_resumes_with_its_tunes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tsv = tmp_path / "ci.tsv"
    tsv.write_text("".join(f"{name}\t{text}\n" for name, text in ci_rows(120)), encoding="utf-8")
    out = tmp_path / "ci.pt"
    common = ["--out", str(out), "--no-progress"]
    sets = [item for override in CI_OVERRIDES for item in ("--set", override)]
    assert run_in_process(capsys, "train", str(tsv), "--config", str(TINY), *sets, "--max-steps", "3", *common)[0] == 0
    before = checkpoint.read(out)["labels"]
    assert run_in_process(capsys, "train", str(tsv), "--resume", "--max-steps", "6", *common)[0] == 0
    after = checkpoint.read(out)
    assert after["labels"] == before and after["train_state"]["step"] == 6
