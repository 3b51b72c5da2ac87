"""The `vaegen` command: parse, call the library, print.

Results (sentences) go to stdout; progress, notes and errors go to stderr. A user error raised by
the library (`VaegenError`) or a bad option ends as one `error: ...` line and a non-zero exit code,
never a traceback. Torch is imported inside the commands, so `vaegen --help` answers at once.
"""

from __future__ import annotations

import functools
import inspect
import json
import os
import sys
from collections.abc import Callable, Iterable
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NamedTuple

import typer

from vaegen.errors import VaegenError

if TYPE_CHECKING:
    from vaegen.decoding import Strategy
    from vaegen.generator import Generation, SentenceGenerator

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
TuneOption = Annotated[str | None, typer.Option(show_default=False, help="For a model trained on tunes (labels, "
                                                "e.g. whole Song ci): write to this tune, in its most common "
                                                "form; `vaegen tunes` lists them.")]


class Precision(str, Enum):
    fp32 = "fp32"
    bf16 = "bf16"


class Path_(str, Enum):
    linear = "linear"
    slerp = "slerp"


class Schedule(str, Enum):
    logistic = "logistic"
    linear = "linear"
    cyclical = "cyclical"
    constant = "constant"


def _note(message: str) -> None:
    """A progress note on stderr; under torchrun only rank 0 speaks."""
    if os.environ.get("RANK", "0") == "0":
        typer.echo(message, err=True)


def _load(checkpoint: Path | None, device: str | None, tunes: bool = False) -> SentenceGenerator:
    """The model named, found, or shipped (for `tunes`, the one of whole ci by tune); stderr says which shipped one."""
    from vaegen import checkpoint as checkpoints
    from vaegen.generator import load, resolve_device

    location = checkpoints.locate(checkpoint, tunes)
    if location in (checkpoints.BUNDLED, checkpoints.BUNDLED_TUNES):
        which = "whole Song ci by tune" if location == checkpoints.BUNDLED_TUNES else "Song ci lines"
        _note(f"no --checkpoint, $VAEGEN_CHECKPOINT or ./vaegen.pt: using the {which} model that ships "
              f"with vaegen; train your own with `vaegen train CORPUS`")
    return load(location, resolve_device(device))


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
    from vaegen.data import read_lines, split_labels, split_valid
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

    def examples(path: Path) -> tuple[list[str] | None, list[str]]:
        """The labels (of a conditional model, label_dim > 0; else None) and the texts of a corpus."""
        lines = read_lines(path, settings.data.max_line_chars, errors)
        return split_labels(lines, path) if settings.model.label_dim else (None, lines)

    def held_out(values: list[str]) -> tuple[list[str], list[str]]:
        return split_valid(values, settings.data.valid_fraction, settings.data.min_valid_lines)

    train_labels, train_lines = examples(corpus)
    if valid is not None:
        valid_labels, valid_lines = examples(valid)
    else:
        (train_lines, valid_lines), total = held_out(train_lines), len(train_lines)
        train_labels, valid_labels = held_out(train_labels) if train_labels is not None else (None, None)
        _note(f"holding out {len(valid_lines)} of {total} lines for validation (pass --valid FILE to choose them)")
    result = fit(settings, train_lines, valid_lines, out, torch_device, resume=payload, progress=progress,
                 train_labels=train_labels, valid_labels=valid_labels)
    best = result.best
    skipped = f", {result.skipped} non-finite batches skipped" if result.skipped else ""
    _note(f"done: {result.steps} steps, {result.epochs} epochs in {result.seconds / 60:.1f} min{skipped}; best valid "
          f"-ELBO {best.elbo:.2f} (NLL {best.rec:.2f}, KL {best.kl:.2f}) nats/sentence")
    _note(f"checkpoint: {out}   metrics: {metrics_path(out)}")


GreedyOption = Annotated[bool, typer.Option("--greedy/--sample", help="Take the most likely token at each step, "
                                            "or sample it (with --temperature, --top-k, --top-p).")]
TemperatureOption = Annotated[float, typer.Option(min=0.01, max=100.0, help="Sampling temperature: below 1 is "
                                                  "safer, above 1 more varied.")]
TopKOption = Annotated[int, typer.Option("--top-k", min=0, help="Sample among the k most likely tokens only "
                                         "(0: all).")]
TopPOption = Annotated[float, typer.Option("--top-p", min=0.01, max=1.0, help="Sample among the smallest set of "
                                           "tokens whose probability reaches p (nucleus sampling; 1: all).")]
BeamOption = Annotated[int, typer.Option("--beam", min=0, max=64, help="Beam search of this width instead "
                                         "(deterministic; 1 is greedy; 0: off).")]
LengthPenaltyOption = Annotated[float, typer.Option(min=0.0, max=10.0, help="Beam search ranks by "
                                                    "log p / length^this (0: raw log p, favouring short text).")]
RhymeOption = Annotated[bool, typer.Option("--rhyme", help="With a tune: end every sentence of the ci (a clause "
                                           "closed by 。？！) on the rhyme of the first, by pinyin (needs "
                                           "pip install 'vaegen[songci]').")]
MaxLengthOption = Annotated[int | None, typer.Option(min=1, max=10_000, show_default=False, help="Tokens per "
                                                     "sentence at most. Default: the model's data.max_length.")]
JsonOption = Annotated[bool, typer.Option("--json", help="One JSON object per line: text and logprob, the "
                                          "decoder's log p(text | z) in nats.")]
WithZOption = Annotated[bool, typer.Option("--with-z", help="Add each sentence's code z to the --json output.")]
OutputOption = Annotated[Path | None, typer.Option("--output", "-o", show_default=False,
                                                   help="Write to this file instead of stdout.")]
ForceOption = Annotated[bool, typer.Option("--force", help="Overwrite an existing --output.")]
InputOption = Annotated[Path | None, typer.Option("--input", "-i", show_default=False,
                                                  help="Read the sentences from this file, one per line.")]
TextsArgument = Annotated[list[str] | None, typer.Argument(show_default=False, help="Sentences (or use --input).")]


def _strategy(greedy: bool, temperature: float, top_k: int, top_p: float, beam: int, length_penalty: float,
              rhyme: bool) -> Strategy:
    """The decoding the options ask for, refusing sampling options that would be silently ignored."""
    from vaegen.decoding import Strategy

    sampling_options = temperature != 1.0 or top_k or top_p < 1.0
    if sampling_options and (greedy or beam):
        raise VaegenError("--temperature, --top-k and --top-p shape sampling; drop them, or drop "
                          f"{'--beam' if beam else '--greedy'} (add --sample where greedy is the default)")
    return Strategy(greedy=greedy, temperature=temperature, top_k=top_k, top_p=top_p, beam=beam,
                    length_penalty=length_penalty, rhyme=rhyme)


def _decoding_options(
    greedy: GreedyOption = False,
    temperature: TemperatureOption = 1.0,
    top_k: TopKOption = 0,
    top_p: TopPOption = 1.0,
    beam: BeamOption = 0,
    length_penalty: LengthPenaltyOption = 1.0,
    max_length: MaxLengthOption = None,
    tune: TuneOption = None,
    rhyme: RhymeOption = False,
    seed: SeedOption = None,
    as_json: JsonOption = False,
    with_z: WithZOption = False,
    output: OutputOption = None,
    force: ForceOption = False,
    checkpoint: CheckpointOption = None,
    device: DeviceOption = None,
) -> None:
    """The options every generation command shares: only its signature is used (see `generation_command`)."""


class Decoding(NamedTuple):
    """The shared options of a generation command, parsed."""

    strategy: Strategy
    max_length: int | None
    tune: str | None
    seed: int | None
    as_json: bool
    with_z: bool
    output: Path | None
    force: bool
    checkpoint: Path | None
    device: str | None


STRATEGY_OPTIONS = ("greedy", "temperature", "top_k", "top_p", "beam", "length_penalty", "rhyme")


def generation_command(greedy: bool) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Give a command the shared decoding and output options after its own, greedy by default or not;
    the command receives them parsed, as its `decoding` argument. Typer reads the combined signature."""
    shared = [p.replace(default=greedy) if p.name == "greedy" else p
              for p in inspect.signature(_decoding_options, eval_str=True).parameters.values()]

    def wrap(command: Callable[..., None]) -> Callable[..., None]:
        own = [p for p in inspect.signature(command, eval_str=True).parameters.values() if p.name != "decoding"]

        @functools.wraps(command)
        def run(**options: Any) -> None:
            values = {p.name: options.pop(p.name) for p in shared}
            strategy = _strategy(*(values.pop(name) for name in STRATEGY_OPTIONS))
            _check_output(values["output"], values["force"], "out.txt")
            command(decoding=Decoding(strategy, **values), **options)

        parameters = own + shared
        run.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
        run.__annotations__ = {p.name: p.annotation for p in parameters}
        return run

    return wrap


def _texts(texts: list[str] | None, source: Path | None) -> list[str]:
    from vaegen.data import read_lines

    if bool(texts) == (source is not None):
        raise VaegenError("give the sentences as arguments or with --input FILE, one of the two")
    return read_lines(source) if source is not None else list(texts or [])


def _check_output(output: Path | None, force: bool, example: str) -> None:
    """Refuse a bad --output before the work, not after it."""
    if output is not None:
        from vaegen.checkpoint import check_writable

        check_writable(output, force, "--output", example)


def _emit(lines: Iterable[str], output: Path | None) -> None:
    """Print the lines, or write them to --output (checked beforehand) at once: never half a file."""
    if output is None:
        for line in lines:
            typer.echo(line)
        return
    from vaegen.checkpoint import write_atomically

    text = "".join(f"{line}\n" for line in lines)
    write_atomically(output, lambda handle: handle.write(text.encode("utf-8")))
    _note(f"wrote {output}")


def _show(generations: list[Generation], decoding: Decoding) -> None:
    """Print the texts, each after its tune (and a tab) where the tunes were not chosen by --tune; or JSON."""
    if not decoding.as_json:
        _emit((g.text if g.tune is None or decoding.tune else f"{g.tune}\t{g.text}" for g in generations),
              decoding.output)
        return
    rows = ({**({"tune": g.tune} if g.tune is not None else {}), "text": g.text, "logprob": round(g.logprob, 4),
             **({"z": [round(v, 5) for v in g.z]} if decoding.with_z else {})} for g in generations)
    _emit((json.dumps(row, ensure_ascii=False) for row in rows), decoding.output)


def _tunes(model: SentenceGenerator, lines: list[str], tune: str | None) -> tuple[list[str], str | list[str] | None]:
    """The texts and their tunes: --tune for all, or for a model trained on tunes without --tune, each line
    read as 'tune<TAB>text' (as in its training corpus)."""
    if model.labels is None or tune is not None or not all("\t" in line for line in lines):
        return lines, tune
    from vaegen.data import split_labels

    tunes, texts = split_labels(lines, Path("the input"))
    return texts, tunes


def _warn_unknown(model: SentenceGenerator, texts: list[str]) -> None:
    for text in texts:
        if unknown := model.tokenizer.unknown(text):
            _note(f"warning: {''.join(dict.fromkeys(unknown))!r} in {text!r} never appeared in training; encoded as <unk>")


@app.command()
@generation_command(greedy=False)
def sample(
    n: Annotated[int, typer.Option("--n", "-n", min=1, max=MAX_SENTENCES, help="How many sentences.")] = 10,
    near: Annotated[str | None, typer.Option(show_default=False, help="Draw the codes around this sentence's "
                                             "code instead of from the prior: variations on it.")] = None,
    radius: Annotated[float, typer.Option(min=0.0, max=100.0, help="With --near: the standard deviation of the "
                                          "codes around the sentence's (the prior's is 1).")] = 0.5,
    *,
    decoding: Decoding,
) -> None:
    """Print N sentences decoded from random points of the latent space, z ~ N(0, I), or from points
    around a sentence of your own (--near).

    A model trained on tunes writes to --tune in its most common form, or to tunes drawn by their
    frequency in training, each printed before its text and a tab."""
    model = _load(decoding.checkpoint, decoding.device, decoding.tune is not None)
    d = decoding
    if near is None:
        generations = model.sample(n, d.strategy, tune=d.tune, seed=d.seed, max_length=d.max_length)
    else:
        _warn_unknown(model, [near])
        generations = model.near(near, n, radius, d.strategy, tune=d.tune, seed=d.seed, max_length=d.max_length)
    _show(generations, decoding)


@app.command()
@generation_command(greedy=True)
def reconstruct(
    texts: TextsArgument = None,
    source: InputOption = None,
    sample_z: Annotated[bool, typer.Option("--sample-z", help="Decode from a draw of q(z|x) instead of its "
                                           "mean.")] = False,
    *,
    decoding: Decoding,
) -> None:
    """Encode each sentence and decode it again (greedy from the posterior mean unless told otherwise):
    what the code keeps of a sentence."""
    d = decoding
    lines = _texts(texts, source)
    model = _load(d.checkpoint, d.device, d.tune is not None)
    lines, tunes = _tunes(model, lines, d.tune)
    _warn_unknown(model, lines)
    _show(model.reconstruct(lines, d.strategy, tune=tunes, sample_z=sample_z, seed=d.seed, max_length=d.max_length), d)


@app.command()
def encode(
    texts: TextsArgument = None,
    source: InputOption = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", show_default=False, help="Write to this file "
                                                "instead of stdout; a name ending in .npy gets a float32 array "
                                                "(N, 2, latent_dim) of mu and sigma.")] = None,
    force: ForceOption = False,
    tune: TuneOption = None,
    checkpoint: CheckpointOption = None,
    device: DeviceOption = None,
) -> None:
    """Print each sentence's posterior q(z|x) = N(mu, sigma^2) as a JSON line {"text", "mu", "sigma"}."""
    lines = _texts(texts, source)
    _check_output(output, force, "codes.npy")
    model = _load(checkpoint, device, tune is not None)
    lines, tunes = _tunes(model, lines, tune)
    if not model.latent_dim:
        raise VaegenError("this checkpoint is a language model (latent_dim = 0): it has no codes to write; "
                          "use a checkpoint trained with --latent-dim above 0")
    _warn_unknown(model, lines)
    mu, logvar = model.encode(lines, tunes)
    sigma = (0.5 * logvar).exp()
    if output is not None and output.suffix == ".npy":
        import numpy as np

        from vaegen.checkpoint import write_atomically

        array = np.stack([mu.float().cpu().numpy(), sigma.float().cpu().numpy()], axis=1)
        write_atomically(output, lambda handle: np.save(handle, array))
        _note(f"wrote {output}: {array.shape[0]} x (mu, sigma) x {array.shape[2]}")
        return
    rows = ({"text": text, "mu": [round(v, 5) for v in m], "sigma": [round(v, 5) for v in s]}
            for text, m, s in zip(lines, mu.tolist(), sigma.tolist()))
    _emit((json.dumps(row, ensure_ascii=False) for row in rows), output)


@app.command()
@generation_command(greedy=True)
def interpolate(
    a: Annotated[str | None, typer.Argument(show_default=False, help="The first sentence.")] = None,
    b: Annotated[str | None, typer.Argument(show_default=False, help="The second sentence.")] = None,
    random: Annotated[bool, typer.Option("--random", help="Draw the endpoints not given from the prior "
                                         "(both, when no sentence is given).")] = False,
    steps: Annotated[int, typer.Option(min=2, max=MAX_STEPS, help="Points on the path, both ends included.")] = 7,
    path: Annotated[Path_, typer.Option(help="linear: the straight line; slerp: the great circle, keeping the "
                                        "codes at typical norms.")] = Path_.linear,
    unique: Annotated[bool, typer.Option("--unique", help="Print a sentence only when it differs from the one "
                                         "before it.")] = False,
    *,
    decoding: Decoding,
) -> None:
    """Walk from the code of A to the code of B and decode each point (greedy unless told otherwise)."""
    if (a is None or b is None) and not random:
        raise VaegenError("interpolate needs two sentences, A and B; or add --random to draw the missing ones "
                          "from the prior")
    model = _load(decoding.checkpoint, decoding.device, decoding.tune is not None)
    _warn_unknown(model, [text for text in (a, b) if text is not None])
    d = decoding
    _show(model.interpolate(a, b, steps, path.value, d.strategy, tune=d.tune, unique=unique, seed=d.seed,
                            max_length=d.max_length), d)


@app.command()
@generation_command(greedy=False)
def complete(
    prefix: Annotated[str, typer.Argument(show_default=False, help="The beginning of a sentence.")],
    n: Annotated[int, typer.Option("--n", "-n", min=1, max=MAX_SENTENCES, help="How many completions.")] = 5,
    candidates: Annotated[int, typer.Option(min=1, max=100_000, help="Codes drawn from the prior and weighted "
                                            "by how well each explains the prefix.")] = 256,
    *,
    decoding: Decoding,
) -> None:
    """Complete a sentence: codes are drawn from the prior, resampled by the likelihood the decoder gives
    PREFIX under each, and the rest of the sentence is decoded from them. Every line begins with PREFIX;
    the codes that explain it best come first."""
    model = _load(decoding.checkpoint, decoding.device, decoding.tune is not None)
    _warn_unknown(model, [prefix])
    d = decoding
    _show(model.complete(prefix, n, d.strategy, tune=d.tune, candidates=candidates, seed=d.seed,
                         max_length=d.max_length), d)


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

    from vaegen.data import read_lines, split_labels
    from vaegen.evaluation import evaluate as run_evaluation

    lines = read_lines(corpus)
    train_lines = read_lines(train_corpus) if train_corpus is not None else None
    model = _load(checkpoint, device)
    tunes = None
    if model.labels is not None:  # a model trained on tunes scores 'tune<TAB>text' lines, p(text | tune)
        tunes, lines = split_labels(lines, corpus)
        train_lines = split_labels(train_lines, train_corpus)[1] if train_corpus and train_lines else None
    _note(f"scoring {len(lines):,} lines with {iw_samples if model.latent_dim else 1} importance samples each")
    report = run_evaluation(model, lines, iw_samples, samples, train_lines, seed, precision.value, progress, tunes)
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
def tunes(
    top: Annotated[int | None, typer.Option(min=1, show_default=False, help="List only the N most common tunes.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per tune.")] = False,
    checkpoint: CheckpointOption = None,
) -> None:
    """List the tunes (labels) a model trained on 'tune<TAB>text' lines knows, most common first: how many
    training ci each had, its most common form (characters per clause and the mark that closes it), and
    the share of its ci written in that form. `sample --tune NAME` writes in that form."""
    model = _load(checkpoint, "cpu", tunes=True)
    if model.labels is None:
        raise VaegenError("this model was trained without tunes; train on 'tune<TAB>text' lines with a preset "
                          "that sets model.label_dim, e.g. configs/songci-ci.toml")
    known = model.labels.known[:top]
    if as_json:
        _emit((json.dumps({"tune": t.name, "count": t.count, "form": t.form, "share": round(t.share, 4)},
                          ensure_ascii=False) for t in known), None)
        return
    _emit((f"{t.name}\t{t.count}\t{t.form}\t{t.share:.0%}" for t in known), None)


@app.command()
def export(
    source: Annotated[Path, typer.Argument(show_default=False, help="A checkpoint written by `vaegen train`.")],
    out: Annotated[Path, typer.Argument(show_default=False, help="The checkpoint to write.")],
    half: Annotated[bool, typer.Option("--half", help="Store the weights in float16: half the size again; "
                                       "they are read back as float32.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing OUT.")] = False,
) -> None:
    """Write a checkpoint for generation alone: the best weights, config and tokenizer, without the
    state for resuming training (a third of the size; `--half` halves it again). Every command but
    `train --resume` reads it."""
    from vaegen import checkpoint as checkpoints

    checkpoints.check_writable(out, force, "OUT")
    checkpoints.export(source, out, half)
    _note(f"exported {out}: {out.stat().st_size / 2**20:.1f} MiB (from {source.stat().st_size / 2**20:.1f} MiB)")


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
    checkpoints.check_writable(target, force, example="run.png")
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
