"""The commands that write checkpoints: `train` (a new run, or one resumed) and `export`.

`train` turns its options into config overrides, settles the config (a new run's, or the saved run's
for --resume), refuses what would fail or crawl before any work starts (an unwritable --out, bf16
without native support), reads the corpus and hands everything to `train.loop.fit`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from vaegen.cli.options import AnnealSchedule, DeviceOption, Precision, SeedOption, note
from vaegen.core.errors import VaegenError

if TYPE_CHECKING:
    from vaegen.core.config import Config
    from vaegen.core.data import Examples
    from vaegen.train.loop import TrainResult


def _settings(out: Path, preset: Path | None, changes: list[str], resume: bool,
              force: bool) -> tuple[Config, dict[str, Any] | None]:
    """The config of the run and, for --resume, the saved run to continue; a new run's --out is checked now."""
    from vaegen.core.config import load_config
    from vaegen.core.files import check_writable
    from vaegen.train.resume import load_resumable

    if resume:
        if force:
            raise VaegenError("--resume continues the run at --out and --force starts a new one over it; "
                              "drop one of the two")
        return load_resumable(out, changes, preset)
    settings = load_config(preset, changes)
    check_writable(out, force)
    return settings, None


def _examples(corpus: Path, valid: Path | None, settings: Config, errors: str) -> tuple[Examples, Examples]:
    """The training and validation examples: --valid, or every k-th corpus line held out."""
    from vaegen.core.data import hold_out, read_examples

    labelled, limit = settings.model.label_dim > 0, settings.data.max_line_chars
    examples = read_examples(corpus, labelled, limit, errors)
    if valid is not None:
        return examples, read_examples(valid, labelled, limit, errors)
    train_set, valid_set = hold_out(examples, settings.data.valid_fraction, settings.data.min_valid_lines)
    note(f"holding out {len(valid_set.texts)} of {len(examples.texts)} lines for validation "
         f"(pass --valid FILE to choose them)")
    return train_set, valid_set


def _summarise(result: TrainResult, out: Path) -> None:
    from vaegen.train.metrics_log import metrics_path

    best = result.best
    skipped = f", {result.skipped} non-finite batches skipped" if result.skipped else ""
    note(f"done: {result.steps} steps, {result.epochs} epochs in {result.seconds / 60:.1f} min{skipped}; best valid "
         f"-ELBO {best.elbo:.2f} (NLL {best.rec:.2f}, KL {best.kl:.2f}) nats/sentence")
    note(f"checkpoint: {out}   metrics: {metrics_path(out)}")


def train(
    corpus: Annotated[Path, typer.Argument(show_default=False, help="UTF-8 text, one example per line.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Checkpoint to write (the best by validation -ELBO); "
                                      "its metrics log goes beside it as NAME.metrics.jsonl.")] = Path("vaegen.pt"),
    valid: Annotated[Path | None, typer.Option(show_default=False, help="Validation lines. Default: every "
                                               "k-th corpus line is held out (k = 1 / data.valid_fraction).")] = None,
    config: Annotated[Path | None, typer.Option("--config", show_default=False, help="TOML preset, e.g. "
                                                "configs/songci.toml. With --resume: the run's own, again (it "
                                                "must agree with the run but for how long it trains).")] = None,
    overrides: Annotated[list[str] | None, typer.Option("--set", show_default=False, help="Override a config "
                                                        "key: section.key=value (repeatable).")] = None,
    epochs: Annotated[int | None, typer.Option(min=1, show_default=False, help="Passes over the corpus "
                                               "(train.epochs).")] = None,
    max_steps: Annotated[int | None, typer.Option(min=1, show_default=False, help="Stop after this many "
                                                  "optimizer steps (train.max_steps).")] = None,
    batch_size: Annotated[int | None, typer.Option(min=1, show_default=False, help="Sentences per batch "
                                                   "(train.batch_size).")] = None,
    lr: Annotated[float | None, typer.Option(min=0.0, show_default=False, help="Adam learning rate "
                                             "(train.lr).")] = None,
    latent_dim: Annotated[int | None, typer.Option(min=0, show_default=False, help="Dimensions of the latent "
                                                   "code z; 0 trains the decoder alone, an RNN language model "
                                                   "baseline (model.latent_dim).")] = None,
    word_dropout: Annotated[float | None, typer.Option(min=0.0, max=1.0, show_default=False, help="Share of "
                                                       "decoder inputs replaced by <unk> "
                                                       "(train.word_dropout).")] = None,
    anneal: Annotated[AnnealSchedule | None, typer.Option(show_default=False, help="KL-annealing schedule for "
                                                          "beta (anneal.schedule).")] = None,
    precision: Annotated[Precision | None, typer.Option(show_default=False, help="bf16 runs the matrix products "
                                                        "in bfloat16, where the device has it natively (CPUs with "
                                                        "AVX-512 BF16 or AMX, GPUs from compute capability 8.0) "
                                                        "and is refused elsewhere, where it would crawl; auto "
                                                        "takes bf16 where native, else fp32. Validation stays "
                                                        "fp32 (train.precision).")] = None,
    seed: SeedOption = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run saved at --out (after Ctrl-C, a crash "
                                         "or to add epochs): weights, optimizer, annealing step, random state and "
                                         "data position are restored.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Start a new run over an existing checkpoint at "
                                        "--out.")] = False,
    replace_bad_bytes: Annotated[bool, typer.Option("--replace-bad-bytes", help="Read a corpus that is not valid "
                                                    "UTF-8, replacing bad bytes with U+FFFD (default: refuse "
                                                    "it).")] = False,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
    device: DeviceOption = None,
) -> None:
    """Learn a tokenizer and a sentence VAE from CORPUS and write one checkpoint file.

    An existing checkpoint at --out is never overwritten: continue it with --resume or replace it with --force.
    Ctrl-C or SIGTERM writes a resumable checkpoint before exiting.
    """
    from vaegen.core.devices import resolve_device, resolve_precision
    from vaegen.train.loop import fit

    flags = {"train.epochs": epochs, "train.max_steps": max_steps, "train.batch_size": batch_size, "train.lr": lr,
             "model.latent_dim": latent_dim, "train.word_dropout": word_dropout,
             "anneal.schedule": anneal.value if anneal else None, "train.seed": seed,
             "train.precision": precision.value if precision else None}
    changes = (overrides or []) + [f"{key}={value}" for key, value in flags.items() if value is not None]
    settings, payload = _settings(out, config, changes, resume, force)
    torch_device = resolve_device(device)
    resolve_precision(settings.train.precision, torch_device)  # bf16 where it is emulated: refused before any work
    train_set, valid_set = _examples(corpus, valid, settings, "replace" if replace_bad_bytes else "strict")
    result = fit(settings, train_set.texts, valid_set.texts, out, torch_device, resume=payload, progress=progress,
                 train_labels=train_set.labels, valid_labels=valid_set.labels)
    _summarise(result, out)


def export(
    source: Annotated[Path, typer.Argument(show_default=False, help="A checkpoint written by `vaegen train`.")],
    out: Annotated[Path, typer.Argument(show_default=False, help="The checkpoint to write.")],
    half: Annotated[bool, typer.Option("--half", help="Store the weights in float16: half the size again; "
                                       "they are read back as float32.")] = False,
    int8: Annotated[bool, typer.Option("--int8", help="Store the weight matrices in int8 with one scale per row "
                                       "(vectors in float16): a quarter of float32; read back as float32. "
                                       "Measure the model's test IW-NLL before shipping it so.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing OUT.")] = False,
) -> None:
    """Write a checkpoint for generation alone: the best weights, config and tokenizer, without the
    state for resuming training (a third of the size; `--half` halves it again, `--int8` quarters it). Every
    command but `train --resume` reads it."""
    from vaegen.core import checkpoint
    from vaegen.core.files import check_writable

    if half and int8:
        raise VaegenError("--half and --int8 both choose how weights are stored; give one of them")
    check_writable(out, force, "OUT")
    checkpoint.export(source, out, "int8" if int8 else "float16" if half else "float32")
    note(f"exported {out}: {out.stat().st_size / 2**20:.1f} MiB (from {source.stat().st_size / 2**20:.1f} MiB)")
