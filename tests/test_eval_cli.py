"""`vaegen eval` and `vaegen plot` end to end, and the language-model baseline (latent_dim = 0)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, cast

import pytest
import torch
from conftest import TINY, english_lines
from test_cli import assert_user_error, run_in_process
from test_conditional import CI_OVERRIDES, ci_rows

import vaegen
from vaegen.cli import run
from vaegen.core import metrics
from vaegen.core.config import load_config
from vaegen.core.data import split_valid
from vaegen.train.loop import fit

KEYS = {"sentences", "tokens", "nll", "ppl", "elbo", "rec", "kl", "mi", "au", "bleu", "distinct_1", "distinct_2",
        "self_bleu", "copy_rate", "units", "unit", "iw_samples", "precision"}


@pytest.fixture(scope="module")
def split(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    config = load_config(TINY)
    train, valid = split_valid(english_lines(), config.data.valid_fraction, config.data.min_valid_lines)
    folder = tmp_path_factory.mktemp("split")
    (folder / "train.txt").write_text("\n".join(train) + "\n", encoding="utf-8")
    (folder / "valid.txt").write_text("\n".join(valid) + "\n", encoding="utf-8")
    return folder / "train.txt", folder / "valid.txt"


@pytest.fixture(scope="module")
def language_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny preset with no latent code: the decoder alone."""
    out = tmp_path_factory.mktemp("lm") / "lm.pt"
    config = load_config(TINY, ["model.latent_dim=0", "train.word_dropout=0.0"])
    train, valid = split_valid(english_lines(), config.data.valid_fraction, config.data.min_valid_lines)
    fit(config, train, valid, out, torch.device("cpu"), progress=False, log=lambda _: None)
    return out


def eval_json(capsys: pytest.CaptureFixture[str], checkpoint: Path, *args: str) -> dict[str, float]:
    code = run(["eval", *args, "--json", "-c", str(checkpoint)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out)


def test_eval_reports_every_figure_consistently(capsys: pytest.CaptureFixture[str], tiny_checkpoint: Path,
                                                split: tuple[Path, Path]) -> None:
    train, valid = split
    report = eval_json(capsys, tiny_checkpoint, str(valid), "-k", "50", "--samples", "40", "--train", str(train))
    assert KEYS <= report.keys()
    lines = valid.read_text(encoding="utf-8").splitlines()
    assert report["sentences"] == len(lines) and report["unit"] == "word" and report["precision"] == "fp32"
    assert report["units"] == sum(len(line.split()) + 1 for line in lines)
    assert report["ppl"] == pytest.approx(math.exp(report["nll"] * report["sentences"] / report["units"]), rel=1e-6)
    assert report["nll"] <= report["elbo"]
    assert report["elbo"] == pytest.approx(report["rec"] + report["kl"], abs=1e-3)
    assert report["mi_ceiling"] == pytest.approx(math.log(len(lines))) and report["mi"] <= report["mi_ceiling"]
    # the other figures, worked out again from the model: the posterior means, the greedy reconstructions
    # and the prior samples of the same seed
    model = vaegen.load(tiny_checkpoint, "cpu")
    assert report["au"] == metrics.active_units(model.encode(lines).mu) <= model.latent_dim
    assert report["bleu"] == pytest.approx(metrics.corpus_bleu([g.text for g in model.reconstruct(lines)], lines, False))
    drawn = [g.text for g in model.sample(40, seed=0)]
    assert report["distinct_1"] == pytest.approx(metrics.distinct_n(drawn, 1, False))
    assert report["distinct_2"] == pytest.approx(metrics.distinct_n(drawn, 2, False))
    assert report["self_bleu"] == pytest.approx(metrics.self_bleu(drawn, False))
    seen = set(train.read_text(encoding="utf-8").splitlines())
    assert report["copy_rate"] == sum(text in seen for text in drawn) / len(drawn)
    # the same seed gives the same figures
    again = eval_json(capsys, tiny_checkpoint, str(valid), "-k", "50", "--samples", "40", "--train", str(train))
    assert {k: v for k, v in again.items() if k != "seconds"} == {k: v for k, v in report.items() if k != "seconds"}


def test_eval_table_names_its_units(capsys: pytest.CaptureFixture[str], tiny_checkpoint: Path,
                                    split: tuple[Path, Path]) -> None:
    assert run(["eval", str(split[1]), "-k", "5", "--samples", "10", "-c", str(tiny_checkpoint)]) == 0
    out = capsys.readouterr().out
    assert "NLL (IW, K=5)" in out and "per word (end of sentence counted)" in out and "copies of training lines n/a" in out


def test_language_model_baseline_trains_samples_and_scores_exactly(
        capsys: pytest.CaptureFixture[str], language_model: Path, split: tuple[Path, Path]) -> None:
    payload = torch.load(language_model, weights_only=True)
    assert not any(name.startswith(("encoder.", "to_posterior.", "latent_to_hidden.")) for name in payload["model"])
    report = eval_json(capsys, language_model, str(split[1]), "-k", "50", "--samples", "20")
    assert report["iw_samples"] == 1 and report["kl"] == 0.0 and report["mi"] == 0.0 and report["au"] == 0
    assert report["nll"] == pytest.approx(report["elbo"], abs=1e-4)
    assert run(["sample", "--n", "3", "--seed", "1", "-c", str(language_model)]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 3
    assert_user_error(run_in_process(capsys, "interpolate", "a dog", "the cat", "-c", str(language_model)),
                      "language model")


@pytest.mark.parametrize(("args", "fragment"), [
    (["-k", "0"], "--iw-samples"),
    (["--samples", "1"], "--samples"),
    (["--precision", "fp16"], "--precision"),
])
def test_eval_refuses_bad_flags(capsys: pytest.CaptureFixture[str], tiny_checkpoint: Path,
                                split: tuple[Path, Path], args: list[str], fragment: str) -> None:
    assert_user_error(run_in_process(capsys, "eval", str(split[1]), *args, "-c", str(tiny_checkpoint)), fragment)


def test_eval_refuses_a_missing_corpus(capsys: pytest.CaptureFixture[str], tiny_checkpoint: Path, tmp_path: Path) -> None:
    assert_user_error(run_in_process(capsys, "eval", str(tmp_path / "nope.txt"), "-c", str(tiny_checkpoint)),
                      "does not exist")


def test_plot_writes_a_png_and_never_overwrites(capsys: pytest.CaptureFixture[str], tiny_checkpoint: Path,
                                                split: tuple[Path, Path], tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    out = tmp_path / "run.png"
    code, err = run_in_process(capsys, "plot", "-c", str(tiny_checkpoint), "--valid", str(split[1]), "--out", str(out))
    assert code == 0, err
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000
    before = out.read_bytes()
    assert_user_error(run_in_process(capsys, "plot", "-c", str(tiny_checkpoint), "--out", str(out)), "--force")
    assert out.read_bytes() == before
    code, err = run_in_process(capsys, "plot", "-c", str(tiny_checkpoint), "--out", str(out), "--force")
    assert code == 0, err


def test_plot_projects_the_lines_of_a_model_of_tunes_with_their_tunes(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    rows = ci_rows(120)
    tsv = tmp_path / "ci.tsv"
    tsv.write_text("".join(f"{name}\t{text}\n" for name, text in rows), encoding="utf-8")
    model = tmp_path / "ci.pt"
    sets = [item for override in CI_OVERRIDES for item in ("--set", override)]
    code, err = run_in_process(capsys, "train", str(tsv), "--config", str(TINY), *sets, "--max-steps", "3",
                               "--out", str(model), "--no-progress")
    assert code == 0, err
    out = tmp_path / "ci.png"
    code, err = run_in_process(capsys, "plot", "-c", str(model), "--valid", str(tsv), "--out", str(out))
    assert code == 0, err
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000


def test_plot_needs_the_metrics_log(capsys: pytest.CaptureFixture[str], tiny_checkpoint: Path, tmp_path: Path) -> None:
    alone = tmp_path / "alone.pt"
    alone.write_bytes(tiny_checkpoint.read_bytes())
    assert_user_error(run_in_process(capsys, "plot", "-c", str(alone)), "metrics log")


def test_eval_judges_fluency_with_an_ngram_model_of_the_training_text(
        capsys: pytest.CaptureFixture[str], tiny_checkpoint: Path, split: tuple[Path, Path]) -> None:
    pytest.importorskip("nltk")
    from vaegen.eval import fluency

    train, valid = split
    report = eval_json(capsys, tiny_checkpoint, str(valid), "-k", "5", "--samples", "12", "--judge-train", str(train))
    lines = valid.read_text(encoding="utf-8").splitlines()
    judge = fluency.train_judge(train.read_text(encoding="utf-8").splitlines())
    drawn = [g.text for g in vaegen.load(tiny_checkpoint, "cpu").sample(12, seed=0)]
    figures = cast(dict[str, Any], report["fluency"])  # eval_json's values are numbers, but for this one
    samples, human = figures["samples"], figures["human"]
    assert figures["unit"] == "word" and figures["order"] == fluency.ORDER
    assert samples["judge_ppl"] == pytest.approx(fluency.perplexity(judge, drawn))
    assert samples["distinct_2"] == pytest.approx(report["distinct_2"])
    assert human["judge_ppl"] == pytest.approx(fluency.perplexity(judge, lines))
    assert human["texts"] == len(lines) and human["diversity_texts"] == 12
    assert run(["eval", str(valid), "-k", "5", "--samples", "12", "--judge-train", str(train),
                "-c", str(tiny_checkpoint)]) == 0
    out = capsys.readouterr().out
    assert "judge perplexity (3-gram)" in out and f"held-out lines {human['judge_ppl']:.2f} per word" in out
    assert eval_json(capsys, tiny_checkpoint, str(valid), "-k", "5", "--samples", "12")["fluency"] is None
