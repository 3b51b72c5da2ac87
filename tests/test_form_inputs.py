"""Where a decoder stands in a ci's form: the same inputs in training (read from the ci) and in generation (from
the form asked for, step by step), and a form-aware model that trains and writes."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import ROOT, TINY

import vaegen
from vaegen.cli import run
from vaegen.core import checkpoint
from vaegen.core.config import TokenizerConfig
from vaegen.core.errors import CheckpointError
from vaegen.core.tokenizer import Tokenizer
from vaegen.eval.report import evaluate
from vaegen.songci.form_inputs import END, RHYME, FormReader, of_form, prefix_inputs
from vaegen.songci.form_mask import HeldForm
from vaegen.songci.forms import form_of, rhyme_steps
from vaegen.songci.rhymes import rhyme_classes
from vaegen.songci.tunes import form_probability
from vaegen.train.resume import load_resumable

CI = "春风又绿江南岸，明月何时照我还。花落知多少。"


def reads(form: HeldForm, step: int, tokens: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
    found = form.reads(step, tokens, rows)
    assert found is not None
    return found


def test_a_form_reads_as_kind_clause_and_characters_left() -> None:
    inputs = of_form("2，3。2。")
    comma, stop = 3, 4  # kinds of the marks: 3 + their index in MARKS
    assert inputs[:, 0].tolist() == [1, 1, comma, 1, 1, RHYME, stop, 1, RHYME, stop, END]
    assert inputs[:, 1].tolist() == [0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 3]
    assert inputs[:, 2].tolist() == [2, 1, 0, 3, 2, 1, 0, 2, 1, 0, 0]


def test_training_reads_a_ci_as_generation_reads_its_form_step_by_step() -> None:
    tokenizer, _ = Tokenizer.train([CI] * 3 + ["江南好。"], TokenizerConfig(model_type="char", vocab_size=100))
    ids = tokenizer.encode([CI])[0]
    trained = FormReader(tokenizer).of_text(ids)  # (len + 1, 4)
    static = torch.from_numpy(of_form(form_of(CI)))
    assert np.array_equal(trained[:, :3], static.numpy())
    rhymes = np.flatnonzero(trained[:, 0] == RHYME)
    assert trained[rhymes[0], 3] == 0 and (trained[rhymes[1:], 3] == ids[rhymes[0]]).all()  # later rhymes: the first
    form = HeldForm(torch.ones(len(ids) + 1, tokenizer.vocab_size, dtype=torch.bool), form_ids=static,
                rhyme_slots=tuple(rhyme_steps(form_of(CI))))  # as TuneBook holds it for a form-aware model
    tokens = torch.tensor([ids])
    for step in range(len(ids) + 1):
        assert reads(form, step, tokens)[0, 0].tolist() == trained[step].tolist()
    for k in (0, 5, 12):  # after a prefix of k tokens, <s> and the prefix read the first k + 1 steps
        assert prefix_inputs(static, ids[:k])[0].tolist() == trained[: k + 1].tolist()
        after = form.after(ids[:k])
        assert reads(after, 3, tokens[:, k:])[0, 0].tolist() == trained[k + 3].tolist()
        rows = torch.tensor([0, 0])  # the rows of a shrinking batch read their own tokens
        assert reads(after, len(ids) - k - 2, tokens[:, k:], rows)[:, 0].tolist() == [trained[len(ids) - 2].tolist()] * 2


@pytest.fixture(scope="module")
def form_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A tiny form-aware conditional model of whole ci, trained in seconds, and its corpus."""
    folder = tmp_path_factory.mktemp("form")
    corpus = folder / "ci.tsv"
    with (ROOT / "data" / "songci" / "ci.train.tsv").open(encoding="utf-8") as handle:
        corpus.write_text("".join(line for line, _ in zip(handle, range(200))), encoding="utf-8")
    out = folder / "form.pt"
    assert run(["train", str(corpus), "--config", str(TINY), "--out", str(out), "--no-progress", "--max-steps", "20",
                "--set", "model.label_dim=4", "--set", "model.form_dim=8", "--set", "data.max_length=160",
                "--set", "tokenizer.model_type=char", "--set", "tokenizer.vocab_size=2000"]) == 0
    return out, corpus


def test_a_form_aware_model_trains_and_writes_the_form_asked_for(form_model: tuple[Path, Path]) -> None:
    out, _ = form_model
    model = vaegen.load(out, "cpu")
    assert model.model.form_embedding is not None
    tune = model.labels.known[0]
    for strategy in (vaegen.Strategy(), vaegen.Strategy(beam=2)):
        assert all(form_of(g.text) == tune.form for g in model.sample(3, strategy, tune=tune.name, seed=0))
    reference = model.model
    nowhere = torch.zeros(1, 4, 4, dtype=torch.long)  # (B, T, 4): no form at any step
    code = torch.zeros(1, reference.config.latent_dim + reference.config.label_dim)
    state = reference.initial_state(code)
    plain, _ = reference.decode(torch.full((1, 4), 5), code, state, nowhere)
    told, _ = reference.decode(torch.full((1, 4), 5), code, state, nowhere + torch.tensor([1, 0, 3, 0]))
    assert not torch.allclose(plain, told)  # the decoder reads where it stands


def test_eval_adds_the_forms_own_likelihood_to_a_form_aware_models(form_model: tuple[Path, Path]) -> None:
    out, corpus = form_model
    model = vaegen.load(out, "cpu")
    tunes, texts = zip(*(line.split("\t", 1) for line in corpus.read_text(encoding="utf-8").splitlines()[:6]))
    report = evaluate(model, list(texts), iw_samples=2, prior_samples=2, tunes=list(tunes))
    assert model.labels is not None
    expected = -sum(math.log(form_probability(model.labels.tune(label), form_of(text)))
                    for label, text in zip(model.labels.ids(tunes), texts)) / len(texts)
    assert report.form_nll == pytest.approx(expected) and report.form_nll > 0
    assert report.elbo >= report.nll - 1.0  # both carry the form's term: -ELBO still bounds the estimate


def test_the_trained_model_knows_each_tokens_rhyme_group(form_model: tuple[Path, Path]) -> None:
    """Training fills the token -> rhyme group table from the tokenizer, and the checkpoint keeps it."""
    model = vaegen.load(form_model[0], "cpu")
    assert model.model.form_embedding is not None
    groups = model.model.form_embedding.rhyme_group
    assert torch.equal(groups, rhyme_classes(model.tokenizer) + 1)
    piece = model.tokenizer.sp.piece_to_id
    assert groups[piece("天")] == groups[piece("山")] != groups[piece("风")]  # tian, shan rhyme in "an"; feng does not


def test_a_form_aware_checkpoint_of_format_2_is_refused_with_the_fix(form_model: tuple[Path, Path],
                                                                    tmp_path: Path) -> None:
    old = tmp_path / "old.pt"
    torch.save({**torch.load(form_model[0], weights_only=True), "version": 2}, old)
    with pytest.raises(CheckpointError, match="retrain it"):
        checkpoint.load(old)
    with pytest.raises(CheckpointError, match="retrain it"):  # resuming it is refused alike
        load_resumable(old, [])
