"""The `vaegen` command: parse, call the library, print.

Results (sentences) go to stdout; progress, notes and errors go to stderr. A user error raised by
the library (`VaegenError`) or a bad option ends as one `error: ...` line and a non-zero exit code,
never a traceback. Torch is imported inside the commands, so `vaegen --help` answers at once.
"""

from __future__ import annotations

import os
import sys
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from vaegen.errors import VaegenError

if TYPE_CHECKING:
    from vaegen.generator import SentenceGenerator

app = typer.Typer(
    name="vaegen",
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)

MAX_SENTENCES = 1_000_000
MAX_STEPS = 1_000

CheckpointOption = Annotated[Path | None, typer.Option(
    "--checkpoint", "-c", show_default=False,
    help="Checkpoint written by `vaegen train`. Default: $VAEGEN_CHECKPOINT, then ./vaegen.pt.")]
DeviceOption = Annotated[str | None, typer.Option(
    show_default=False, help="Torch device, e.g. cpu or cuda. Default: cuda when available, else cpu.")]
SeedOption = Annotated[int | None, typer.Option(help="Random seed; the same seed gives the same output.")]


class Precision(str, Enum):
    fp32 = "fp32"
    bf16 = "bf16"


class Schedule(str, Enum):
    logistic = "logistic"
    linear = "linear"
    cyclical = "cyclical"
    constant = "constant"


def _note(message: str) -> None:
    """A progress note on stderr; under torchrun only rank 0 speaks."""
    if os.environ.get("RANK", "0") == "0":
        typer.echo(message, err=True)


def _load(checkpoint: Path | None, device: str | None) -> SentenceGenerator:
    from vaegen.generator import load, resolve_device

    return load(checkpoint, resolve_device(device))


@app.callback(invoke_without_command=True)
def overview(ctx: typer.Context) -> None:
    """Train a sentence variational autoencoder on any corpus (one example per line) and generate from it."""
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help())


@app.command()
def train(
    corpus: Annotated[Path, typer.Argument(show_default=False, help="UTF-8 text, one example per line.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Checkpoint to write (the best by validation -ELBO); "
                                      "its metrics log goes beside it as NAME.metrics.jsonl.")] = Path("vaegen.pt"),
    valid: Annotated[Path | None, typer.Option(show_default=False, help="Validation lines. Default: every "
                                                  "k-th corpus line is held out (k = 1 / data.valid_fraction).")] = None,
    config: Annotated[Path | None, typer.Option("--config", show_default=False,
                                                   help="TOML preset, e.g. configs/songci.toml.")] = None,
    overrides: Annotated[list[str] | None, typer.Option("--set", show_default=False,
                                                           help="Override a config key: section.key=value (repeatable).")] = None,
    epochs: Annotated[int | None, typer.Option(min=1, show_default=False, help="Passes over the corpus (train.epochs).")] = None,
    max_steps: Annotated[int | None, typer.Option(min=1, show_default=False, help="Stop after this many optimizer steps (train.max_steps).")] = None,
    batch_size: Annotated[int | None, typer.Option(min=1, show_default=False, help="Sentences per batch (train.batch_size).")] = None,
    lr: Annotated[float | None, typer.Option(min=0.0, show_default=False, help="Adam learning rate (train.lr).")] = None,
    latent_dim: Annotated[int | None, typer.Option(min=0, show_default=False, help="Dimensions of the latent code z; 0 trains the decoder alone, an RNN language model baseline (model.latent_dim).")] = None,
    word_dropout: Annotated[float | None, typer.Option(min=0.0, max=1.0, show_default=False, help="Share of decoder inputs replaced by <unk> (train.word_dropout).")] = None,
    anneal: Annotated[Schedule | None, typer.Option(show_default=False, help="KL-annealing schedule for beta (anneal.schedule).")] = None,
    precision: Annotated[Precision | None, typer.Option(show_default=False, help="bf16 runs the matrix products in "
                                                      "bfloat16 (fast on CPUs with AMX); validation stays fp32 "
                                                      "(train.precision).")] = None,
    seed: SeedOption = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run saved at --out (after Ctrl-C, a crash "
                                         "or to add epochs): weights, optimizer, annealing step, random state and "
                                         "data position are restored.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Start a new run over an existing checkpoint at --out.")] = False,
    replace_bad_bytes: Annotated[bool, typer.Option("--replace-bad-bytes", help="Read a corpus that is not valid "
                                                    "UTF-8, replacing bad bytes with U+FFFD (default: refuse it).")] = False,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
    device: DeviceOption = None,
) -> None:
    """Learn a tokenizer and a sentence VAE from CORPUS and write one checkpoint file.

    An existing checkpoint at --out is never overwritten: continue it with --resume or replace it with --force.
    Ctrl-C or SIGTERM writes a resumable checkpoint before exiting.
    """
    from vaegen import checkpoint
    from vaegen.config import load_config
    from vaegen.data import read_lines, split_valid
    from vaegen.generator import resolve_device
    from vaegen.train import fit, load_resumable, metrics_path

    flags = {"train.epochs": epochs, "train.max_steps": max_steps, "train.batch_size": batch_size, "train.lr": lr,
             "model.latent_dim": latent_dim, "train.word_dropout": word_dropout,
             "anneal.schedule": anneal.value if anneal else None, "train.seed": seed,
             "train.precision": precision.value if precision else None}
    changes = (overrides or []) + [f"{key}={value}" for key, value in flags.items() if value is not None]
    if resume:
        if force or config is not None:
            raise VaegenError("--resume continues the run at --out with its own config; drop --force and --config")
        settings, payload = load_resumable(out, changes)
    else:
        settings, payload = load_config(config, changes), None
        checkpoint.check_writable(out, force)
    torch_device = resolve_device(device)
    errors = "replace" if replace_bad_bytes else "strict"
    lines = read_lines(corpus, settings.data.max_line_chars, errors)
    if valid is not None:
        train_lines, valid_lines = lines, read_lines(valid, settings.data.max_line_chars, errors)
    else:
        train_lines, valid_lines = split_valid(lines, settings.data.valid_fraction, settings.data.min_valid_lines)
        _note(f"holding out {len(valid_lines)} of {len(lines)} lines for validation (pass --valid FILE to choose them)")
    result = fit(settings, train_lines, valid_lines, out, torch_device, resume=payload, progress=progress)
    best = result.best
    skipped = f", {result.skipped} non-finite batches skipped" if result.skipped else ""
    _note(f"done: {result.steps} steps, {result.epochs} epochs in {result.seconds / 60:.1f} min{skipped}; best valid "
          f"-ELBO {best.elbo:.2f} (NLL {best.rec:.2f}, KL {best.kl:.2f}) nats/sentence")
    _note(f"checkpoint: {out}   metrics: {metrics_path(out)}")


@app.command()
def sample(
    n: Annotated[int, typer.Option("--n", "-n", min=1, max=MAX_SENTENCES, help="How many sentences.")] = 10,
    temperature: Annotated[float, typer.Option(min=0.01, max=100.0, help="Softmax temperature: below 1 is "
                                              "safer, above 1 more varied.")] = 1.0,
    greedy: Annotated[bool, typer.Option("--greedy", help="Take the most likely token at each step.")] = False,
    seed: SeedOption = None,
    checkpoint: CheckpointOption = None,
    device: DeviceOption = None,
) -> None:
    """Print N sentences decoded from random points of the latent space, z ~ N(0, I)."""
    model = _load(checkpoint, device)
    for line in model.sample(n, temperature=temperature, greedy=greedy, seed=seed):
        typer.echo(line)


@app.command()
def interpolate(
    a: Annotated[str, typer.Argument(show_default=False, help="The first sentence.")],
    b: Annotated[str, typer.Argument(show_default=False, help="The second sentence.")],
    steps: Annotated[int, typer.Option(min=2, max=MAX_STEPS, help="Points on the path, both ends included.")] = 7,
    checkpoint: CheckpointOption = None,
    device: DeviceOption = None,
) -> None:
    """Walk the straight line between the codes of A and B and print a greedy decoding at each point."""
    model = _load(checkpoint, device)
    for text in (a, b):
        if unknown := model.tokenizer.unknown(text):
            _note(f"warning: {''.join(dict.fromkeys(unknown))!r} in {text!r} never appeared in training; encoded as <unk>")
    for line in model.interpolate(a, b, steps):
        typer.echo(line)


@app.command("eval")
def evaluate(
    corpus: Annotated[Path, typer.Argument(show_default=False, help="Held-out UTF-8 lines to score, e.g. a test split.")],
    iw_samples: Annotated[int, typer.Option("--iw-samples", "-k", min=1, max=100_000, help="Importance samples "
                                            "per sentence for the log-likelihood estimate (Burda et al., 2016).")] = 500,
    samples: Annotated[int, typer.Option(min=2, max=MAX_SENTENCES, help="Sentences drawn from the prior for "
                                         "distinct-n, self-BLEU and the copy rate.")] = 1000,
    train_corpus: Annotated[Path | None, typer.Option("--train", show_default=False, help="The training lines: "
                                                      "reports the share of samples that copy one verbatim.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of a table.")] = False,
    precision: Annotated[Precision, typer.Option(help="bf16 scores faster on CPUs with AMX, at bfloat16 "
                                                 "rounding of the matrix products.")] = Precision.fp32,
    seed: Annotated[int, typer.Option(help="Seed of the importance samples and of the prior samples.")] = 0,
    progress: Annotated[bool, typer.Option(help="Show a progress bar while scoring.")] = True,
    checkpoint: CheckpointOption = None,
    device: DeviceOption = None,
) -> None:
    """Score CORPUS with the figures of the sentence-VAE papers.

    Per sentence, in nats: the importance-weighted NLL (an estimate of -log p(x)), -ELBO, reconstruction
    and KL at beta = 1; the perplexity from the IW-NLL per word (per character for CJK text), end of
    sentence counted; mutual information I(x; z) and active units; BLEU of greedy reconstructions; and,
    for samples from the prior, distinct-1/2, self-BLEU and (with --train) the copy rate.
    """
    import json

    from vaegen.data import read_lines
    from vaegen.evaluation import evaluate as run_evaluation

    lines = read_lines(corpus)
    train_lines = read_lines(train_corpus) if train_corpus is not None else None
    model = _load(checkpoint, device)
    _note(f"scoring {len(lines):,} lines with {iw_samples if model.latent_dim else 1} importance samples each")
    report = run_evaluation(model, lines, iw_samples, samples, train_lines, seed, precision.value, progress)
    if as_json:
        typer.echo(json.dumps(report.as_dict()))
        return
    copy = "n/a (pass --train)" if report.copy_rate is None else f"{100 * report.copy_rate:.1f}%"
    rows = [
        ("sentences", f"{report.sentences:,} ({report.tokens:,} tokens, {report.units:,} {report.unit}s with </s>)"),
        (f"NLL (IW, K={report.iw_samples})", f"{report.nll:.2f} nats/sentence"),
        ("perplexity", f"{report.ppl:.2f} per {report.unit} (end of sentence counted)"),
        ("-ELBO", f"{report.elbo:.2f} nats/sentence"),
        ("reconstruction", f"{report.rec:.2f} nats/sentence"),
        ("KL", f"{report.kl:.2f} nats/sentence"),
        ("mutual information", f"{report.mi:.2f} nats"),
        ("active units", f"{report.au} of {report.latent_dim}"),
        ("reconstruction BLEU", f"{report.bleu:.2f}"),
        (f"prior samples ({report.samples:,})", (f"distinct-1 {report.distinct_1:.3f}, distinct-2 "
                                                f"{report.distinct_2:.3f}, self-BLEU {report.self_bleu:.2f}, "
                                                f"copies of training lines {copy}")),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        typer.echo(f"{name:<{width}}  {value}")


@app.command()
def plot(
    out: Annotated[Path | None, typer.Option("--out", "-o", show_default=False,
                                             help="PNG to write. Default: the checkpoint's name with .png.")] = None,
    valid: Annotated[Path | None, typer.Option(show_default=False, help="Lines whose posterior means are "
                                               "projected to 2-D (e.g. the validation file); omit to skip "
                                               "that panel.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing --out.")] = False,
    checkpoint: CheckpointOption = None,
    device: DeviceOption = None,
) -> None:
    """Draw a run as PNG: training NLL, KL and beta by step, the validation curves, and the posterior
    means of --valid lines projected on their two principal axes. Needs matplotlib (pip install 'vaegen[plot]')."""
    from vaegen import checkpoint as checkpoints
    from vaegen.data import read_lines
    from vaegen.plots import draw_run
    from vaegen.train import metrics_path

    location = checkpoints.locate(checkpoint)
    target = out if out is not None else location.with_suffix(".png")
    checkpoints.check_writable(target, force)
    log = metrics_path(location)
    if not log.exists():
        raise VaegenError(f"no metrics log {log} beside {location}; it is written by `vaegen train`")
    lines = read_lines(valid) if valid is not None else None
    draw_run(log, _load(location, device) if lines else None, lines, target)
    _note(f"plot: {target}")


def run(argv: list[str]) -> int:
    """Run the CLI on argv and return the exit code, turning user errors into one line on stderr."""
    try:
        code = app(args=argv, prog_name="vaegen", standalone_mode=False)
    except typer.TyperException as exc:
        ctx = getattr(exc, "ctx", None)
        hint = f" (see `vaegen {ctx.info_name} --help`)" if ctx is not None and ctx.info_name != "vaegen" else ""
        typer.echo(f"error: {exc.format_message()}{hint}", err=True)
        return exc.exit_code
    except VaegenError as exc:
        typer.echo(f"{exc.prefix}{exc}", err=True)
        return exc.exit_code
    except (typer.Abort, KeyboardInterrupt):
        typer.echo("interrupted", err=True)
        return 130
    return code if isinstance(code, int) else 0


def main() -> None:
    sys.exit(run(sys.argv[1:]))
