"""The commands that report on a model rather than write with it: `eval`, `tunes`, `models` and `plot`.

A model trained on tunes reads 'tune<TAB>text' lines here, as it did in training, so that its lines are
scored and encoded given their tunes, p(text | tune) and q(z | text, tune).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from vaegen.cli.options import (
    MAX_SENTENCES,
    CheckpointOption,
    DeviceOption,
    ModelOption,
    Precision,
    emit,
    load_model,
    note,
)
from vaegen.core.errors import VaegenError


def evaluate(
    corpus: Annotated[Path, typer.Argument(show_default=False, help="Held-out UTF-8 lines to score, e.g. a test "
                                           "split ('tune<TAB>text' lines for a model trained on tunes).")],
    iw_samples: Annotated[int, typer.Option("--iw-samples", "-k", min=1, max=100_000, help="Importance samples "
                                            "per sentence for the log-likelihood estimate (Burda et al., "
                                            "2016).")] = 500,
    samples: Annotated[int, typer.Option(min=2, max=MAX_SENTENCES, help="Sentences drawn from the prior for "
                                         "distinct-n, self-BLEU and the copy rate.")] = 1000,
    train_corpus: Annotated[Path | None, typer.Option("--train", show_default=False, help="The training lines: "
                                                      "reports the share of samples that copy one "
                                                      "verbatim.")] = None,
    judge_train: Annotated[Path | None, typer.Option("--judge-train", show_default=False, help="The training "
                                                     "text (e.g. --train's file): fits an n-gram model of it, "
                                                     "cached, which judges the fluency of the prior samples "
                                                     "beside CORPUS (needs pip install 'vaegen[fluency]').")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of a table.")] = False,
    precision: Annotated[Precision, typer.Option(help="bf16 scores faster where the device has native "
                                                 "bfloat16 (CPUs with AVX-512 BF16 or AMX, GPUs from compute "
                                                 "capability 8.0), at bfloat16 rounding of the matrix products, "
                                                 "and is refused elsewhere; auto takes bf16 where "
                                                 "native.")] = Precision["fp32"],
    seed: Annotated[int, typer.Option(help="Seed of the importance samples and of the prior samples.")] = 0,
    progress: Annotated[bool, typer.Option(help="Show a progress bar while scoring.")] = True,
    checkpoint: CheckpointOption = None,
    model_name: ModelOption = None,
    device: DeviceOption = None,
) -> None:
    """Score CORPUS with the figures of the sentence-VAE papers.

    Per sentence, in nats: the importance-weighted NLL (an estimate of -log p(x)), -ELBO, reconstruction
    and KL at beta = 1; the perplexity from the IW-NLL per word (per character for CJK text), end of
    sentence counted; mutual information I(x; z) and active units; BLEU of greedy reconstructions; and,
    for samples from the prior, distinct-1/2, self-BLEU and (with --train) the copy rate. With --judge-train,
    fluency: the perplexity of the samples and of CORPUS under a character (CJK) or word 3-gram model of that
    text, beside distinct-1/2 and self-BLEU of as many CORPUS lines as samples.
    """
    from vaegen.core.data import read_examples
    from vaegen.core.devices import resolve_device, resolve_precision
    from vaegen.eval.report import evaluate as run_evaluation

    torch_device = resolve_device(device)
    resolve_precision(precision.value, torch_device)  # bf16 where it is emulated: refused before any work
    model = load_model(checkpoint, model_name, torch_device)
    labelled = model.labels is not None
    scored = read_examples(corpus, labelled)
    train_lines = read_examples(train_corpus, labelled).texts if train_corpus is not None else None
    judge = None
    if judge_train is not None:
        from vaegen.eval.fluency import cached_judge

        judge_lines = read_examples(judge_train, labelled).texts
        note(f"fluency judge: an n-gram model of the {len(judge_lines):,} lines of {judge_train} "
             "(fitted once, then cached)")
        judge = cached_judge(judge_lines)
    note(f"scoring {len(scored.texts):,} lines with {iw_samples if model.latent_dim else 1} importance samples each")
    report = run_evaluation(model, scored.texts, iw_samples=iw_samples, prior_samples=samples, train_lines=train_lines,
                            seed=seed, precision=precision.value, progress=progress, tunes=scored.labels, judge=judge)
    emit([json.dumps(report.as_dict())] if as_json else report.table(), None)


def tunes(
    name: Annotated[str | None, typer.Argument(show_default=False, help="List this tune's forms instead.")] = None,
    top: Annotated[int | None, typer.Option(min=1, show_default=False, help="List only the N most common "
                                            "tunes (with NAME: forms).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per tune (with NAME: per form).")] = False,
    checkpoint: CheckpointOption = None,
    model_name: ModelOption = None,
) -> None:
    """List the tunes (labels) a model trained on 'tune<TAB>text' lines knows, most common first: how many
    training ci each had, its most common form (characters per clause and the mark that closes it), the
    share of its ci written in that form, and how many forms it has (those seen at least twice in
    training, and the most common). With NAME, list that tune's forms: rank, form, ci and share.
    `sample --tune NAME --form RANK` writes in the form of that rank."""
    model = load_model(checkpoint, model_name, "cpu", by_tune=True)
    if model.labels is None:
        raise VaegenError("this model was trained without tunes; train on 'tune<TAB>text' lines with a preset "
                          "that sets model.label_dim, e.g. configs/songci-ci.toml")
    if name is not None:
        tune = model.labels.find(name)[1]
        rare = tune.count - sum(n for _, n in tune.forms)
        if rare:
            note(f"{tune.name}: {rare} of its {tune.count} training ci in other forms, not listed")
        ranked = list(enumerate(tune.forms, 1))[:top]
        if as_json:
            emit((json.dumps({"rank": rank, "form": form, "count": n, "share": round(n / tune.count, 4)},
                             ensure_ascii=False) for rank, (form, n) in ranked), None)
            return
        emit((f"{rank}\t{form}\t{n}\t{n / tune.count:.0%}" for rank, (form, n) in ranked), None)
        return
    known = model.labels.known[:top]
    if as_json:
        emit((json.dumps({"tune": t.name, "count": t.count, "form": t.form, "share": round(t.share, 4),
                          "forms": len(t.forms)}, ensure_ascii=False) for t in known), None)
        return
    emit((f"{t.name}\t{t.count}\t{t.form}\t{t.share:.0%}\t{len(t.forms)}" for t in known), None)


def models(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per model.")] = False,
) -> None:
    """List the models that ship with vaegen, for --model NAME: what each writes, its corpus and licence, its
    size and its test figures."""
    from vaegen.core import shipped

    listed = list(shipped.models().values())
    if as_json:
        emit((json.dumps({"name": m.name, "summary": m.summary, "corpus": m.corpus, "licence": m.licence,
                          "licence_file": str(m.licence_file), "bytes": m.file.stat().st_size if m.file.exists() else None,
                          "figures": m.scores()}, ensure_ascii=False) for m in listed), None)
        return
    for m in listed:
        size = f"{m.file.stat().st_size / 2**20:.1f} MiB" if m.file.exists() else "not installed"
        emit([f"{m.name}: {m.summary}; {size}",
              f"  corpus: {m.corpus}",
              f"  licence: {m.licence} ({m.licence_file})",
              f"  {m.headline()}"], None)


def plot(
    out: Annotated[Path | None, typer.Option("--out", "-o", show_default=False,
                                             help="PNG to write. Default: the checkpoint's name with .png.")] = None,
    valid: Annotated[Path | None, typer.Option(show_default=False, help="Lines whose posterior means are "
                                               "projected to 2-D (e.g. the validation file; 'tune<TAB>text' "
                                               "lines for a model trained on tunes); omit to skip that "
                                               "panel.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing --out.")] = False,
    checkpoint: CheckpointOption = None,
    device: DeviceOption = None,
) -> None:
    """Draw a run as PNG: training NLL, KL and beta by step, the validation curves, and the posterior
    means of --valid lines projected on their two principal axes. Needs matplotlib (pip install 'vaegen[plot]')."""
    from vaegen.core import checkpoint as checkpoints
    from vaegen.core.data import read_examples
    from vaegen.core.files import check_writable
    from vaegen.eval.plots import draw_run
    from vaegen.train.metrics_log import metrics_path

    location = checkpoints.locate(checkpoint)
    target = out if out is not None else location.with_suffix(".png")
    check_writable(target, force, example="run.png")
    log = metrics_path(location)
    if not log.exists():
        raise VaegenError(f"no metrics log {log} beside {location}; it is written by `vaegen train`")
    if valid is None:
        draw_run(log, None, None, target)
    else:
        model = load_model(location, None, device)
        projected = read_examples(valid, model.labels is not None)
        draw_run(log, model, projected.texts, target, projected.labels)
    note(f"plot: {target}")
