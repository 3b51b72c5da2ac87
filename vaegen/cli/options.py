"""The options the commands share, declared once, and the input and output every command does alike.

A shared option is an `Annotated` alias declared once. The decoding and output options of the
generation commands are listed once, in DECODING_OPTIONS, and `generation_command` gives them to each
of those commands, which receives them by name as one checked `Decoding`. Choices come from the
library's constants (`config.PRECISIONS`, `ANNEAL_SCHEDULES`, `INTERPOLATION_PATHS`), so the CLI cannot
offer a value the library refuses. `parse_decoding` refuses combinations that would be silently
ignored. Notes go to stderr; results go to stdout, or to --output written whole. Torch is imported
inside the functions, so that `vaegen --help` answers at once.
"""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Callable, Iterable
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NamedTuple

import typer

from vaegen.config import ANNEAL_SCHEDULES, INTERPOLATION_PATHS, PRECISIONS, SAMPLING_TEMPERATURE, SAMPLING_TOP_P
from vaegen.errors import VaegenError

if TYPE_CHECKING:
    import torch

    from vaegen.decoding import Strategy
    from vaegen.generator import SentenceGenerator

MAX_SENTENCES = 1_000_000
MAX_STEPS = 1_000

# Choices as enums built from those constants (mypy cannot list members computed at run time)
Precision = Enum("Precision", {name: name for name in PRECISIONS}, type=str)  # type: ignore[misc]
AnnealSchedule = Enum("AnnealSchedule", {name: name for name in ANNEAL_SCHEDULES}, type=str)  # type: ignore[misc]
LatentPath = Enum("LatentPath", {name: name for name in INTERPOLATION_PATHS}, type=str)  # type: ignore[misc]

CheckpointOption = Annotated[Path | None, typer.Option(
    "--checkpoint", "-c", show_default=False,
    help="Checkpoint written by `vaegen train`. Default: $VAEGEN_CHECKPOINT, then ./vaegen.pt.")]
DeviceOption = Annotated[str | None, typer.Option(
    show_default=False, help="Torch device, e.g. cpu or cuda. Default: cuda when available, else cpu.")]
SeedOption = Annotated[int | None, typer.Option(help="Random seed; the same seed gives the same output.")]
TuneOption = Annotated[str | None, typer.Option(show_default=False, help="For a model trained on tunes (labels, "
                                                "e.g. whole Song ci): write to this tune, in one of its forms "
                                                "(--form); `vaegen tunes` lists them.")]
FormOption = Annotated[str | None, typer.Option(show_default=False, help="With --tune: write in this form, its "
                                                "rank in `vaegen tunes NAME` (1: the most common) or written "
                                                "out as listed there, e.g. 7。7。7。7，7。7。 (a form the tune "
                                                "did not use is written too, with a warning). Default: sample "
                                                "draws each ci's form by how often the tune used it, reconstruct "
                                                "and --near keep the text's own, the others take the most "
                                                "common.")]
GreedyOption = Annotated[bool, typer.Option("--greedy/--sample", help="Take the most likely token at each step, "
                                            "or sample it (with --temperature, --top-k, --top-p).")]
TemperatureOption = Annotated[float | None, typer.Option(min=0.01, max=100.0, show_default=False, help="Sampling "
                                                         "temperature: below 1 is safer, above 1 more varied. "
                                                         f"Default when sampling: {SAMPLING_TEMPERATURE} if neither "
                                                         "--top-k nor --top-p is given (the strategy whose text is "
                                                         "closest to human text in judge perplexity and distinct-2, "
                                                         "docs/BENCHMARKS.md), else 1.")]
TopKOption = Annotated[int, typer.Option("--top-k", min=0, help="Sample among the k most likely tokens only "
                                         "(0: all).")]
TopPOption = Annotated[float | None, typer.Option("--top-p", min=0.01, max=1.0, show_default=False, help="Sample "
                                                  "among the smallest set of tokens whose probability reaches p "
                                                  "(nucleus sampling; 1: all). Default: 1.")]
BeamOption = Annotated[int, typer.Option("--beam", min=0, max=64, help="Beam search of this width instead "
                                         "(deterministic; 1 is greedy; 0: off).")]
LengthPenaltyOption = Annotated[float, typer.Option(min=0.0, max=10.0, help="Beam search ranks by "
                                                    "log p / length^this (0: raw log p, favouring short text).")]
RhymeOption = Annotated[bool, typer.Option("--rhyme", help="With a tune: end every sentence of the ci (a clause "
                                           "closed by 。？！) on the rhyme of the first, by pinyin (needs "
                                           "pip install 'vaegen[songci]').")]
GrammarOption = Annotated[bool, typer.Option("--grammar/--no-grammar", help="Without a tune's form, hold the clause "
                                             "marks of Chinese text to well-formed clauses: no mark opens a clause "
                                             "or follows a mark, and a line ends on a mark (a model without such "
                                             "marks is not affected). --no-grammar shows what the model writes "
                                             "alone.")]
MaxLengthOption = Annotated[int | None, typer.Option(min=1, max=10_000, show_default=False, help="Tokens per "
                                                     "sentence at most. Default: the model's data.max_length.")]
JsonOption = Annotated[bool, typer.Option("--json", help="One JSON object per line: text and logprob, the "
                                          "decoder's log p(text | z) in nats (for a model of tunes, after "
                                          "the tune and the form).")]
WithZOption = Annotated[bool, typer.Option("--with-z", help="Add each sentence's code z to the --json output.")]
OutputOption = Annotated[Path | None, typer.Option("--output", "-o", show_default=False,
                                                   help="Write to this file instead of stdout.")]
ForceOption = Annotated[bool, typer.Option("--force", help="Overwrite an existing --output.")]
InputOption = Annotated[Path | None, typer.Option("--input", "-i", show_default=False,
                                                  help="Read the sentences from this file, one per line.")]
TextsArgument = Annotated[list[str] | None, typer.Argument(show_default=False, help="Sentences (or use --input).")]


class Decoding(NamedTuple):
    """The shared options of a generation command, checked: how to decode, and what to print where."""

    strategy: Strategy
    max_length: int | None
    tune: str | None
    form: str | int | None  # a form written out, or its rank among the tune's forms
    seed: int | None
    as_json: bool
    with_z: bool
    output: Path | None
    checkpoint: Path | None
    device: str | None


def parse_decoding(*, greedy: bool, temperature: float | None, top_k: int, top_p: float | None, beam: int,
                   length_penalty: float, rhyme: bool, grammar: bool, max_length: int | None, tune: str | None,
                   form: str | None, seed: int | None, as_json: bool, with_z: bool, output: Path | None, force: bool, checkpoint: Path | None,
                   device: str | None) -> Decoding:
    """The decoding the options ask for, refusing sampling options that would be silently ignored and a bad
    --output, before any model is loaded."""
    from vaegen.decoding import Strategy

    shaped = temperature is not None or top_k or top_p is not None
    if shaped and (greedy or beam):
        raise VaegenError("--temperature, --top-k and --top-p shape sampling; drop them, or drop "
                          f"{'--beam' if beam else '--greedy'} (add --sample where greedy is the default)")
    check_output(output, force, "out.txt")
    if not (shaped or greedy or beam):  # sampling's default
        temperature, top_p = SAMPLING_TEMPERATURE, SAMPLING_TOP_P
    strategy = Strategy(greedy=greedy, temperature=1.0 if temperature is None else temperature, top_k=top_k,
                        top_p=1.0 if top_p is None else top_p, beam=beam,
                        length_penalty=length_penalty, rhyme=rhyme, grammar=grammar)
    return Decoding(strategy=strategy, max_length=max_length, tune=tune, form=parse_form(form, tune), seed=seed,
                    as_json=as_json, with_z=with_z, output=output, checkpoint=checkpoint, device=device)


def parse_form(form: str | None, tune: str | None) -> str | int | None:
    """--form as a rank (digits) or a form written out, checked before any model is loaded; a rank's range
    depends on the tune, which the model knows."""
    if form is None:
        return None
    if tune is None:
        raise VaegenError("--form needs --tune: a form belongs to a tune (`vaegen tunes NAME` lists its forms)")
    if form.isascii() and form.isdigit():
        return int(form)
    from vaegen.tunes import slots

    try:
        slots(form)
    except ValueError:
        raise VaegenError(f"--form {form!r} is neither a rank nor a form; give a rank in `vaegen tunes {tune}` "
                          "or a form written as it lists one: each clause as its length and mark, e.g. "
                          "7。7。7。7，7。7。") from None
    return form


# The options every generation command takes after its own, in --help order: name, alias, default. Declared
# once here; `generation_command` adds them to a command and `parse_decoding` takes them by name.
DECODING_OPTIONS: tuple[tuple[str, object, object], ...] = (
    ("greedy", GreedyOption, False),  # each command's own default replaces this one
    ("temperature", TemperatureOption, None),
    ("top_k", TopKOption, 0),
    ("top_p", TopPOption, None),
    ("beam", BeamOption, 0),
    ("length_penalty", LengthPenaltyOption, 1.0),
    ("max_length", MaxLengthOption, None),
    ("tune", TuneOption, None),
    ("form", FormOption, None),
    ("rhyme", RhymeOption, False),
    ("grammar", GrammarOption, True),
    ("seed", SeedOption, None),
    ("as_json", JsonOption, False),
    ("with_z", WithZOption, False),
    ("output", OutputOption, None),
    ("force", ForceOption, False),
    ("checkpoint", CheckpointOption, None),
    ("device", DeviceOption, None),
)


def generation_command(*, greedy: bool) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Give a command the shared decoding and output options after its own, greedy by default or sampling; it
    receives them checked, as one `Decoding` in its keyword argument `decoding`. Typer reads the signature
    built here: the command's own parameters, then DECODING_OPTIONS."""
    shared = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=alias,
                                default=greedy if name == "greedy" else default)
              for name, alias, default in DECODING_OPTIONS]

    def wrap(command: Callable[..., None]) -> Callable[..., None]:
        own = [p for p in inspect.signature(command, eval_str=True).parameters.values() if p.name != "decoding"]

        @functools.wraps(command)
        def run(**options: Any) -> None:
            decoding = parse_decoding(**{name: options.pop(name) for name, _, _ in DECODING_OPTIONS})
            command(decoding=decoding, **options)

        parameters = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own] + shared
        run.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
        run.__annotations__ = {p.name: p.annotation for p in parameters}
        return run

    return wrap


def note(message: str) -> None:
    """A progress note on stderr; under torchrun only rank 0 speaks."""
    if os.environ.get("RANK", "0") == "0":
        typer.echo(message, err=True)


def check_output(output: Path | None, force: bool, example: str) -> None:
    """Refuse a bad --output before the work, not after it."""
    if output is not None:
        from vaegen.files import check_writable

        check_writable(output, force, "--output", example)


def emit(lines: Iterable[str], output: Path | None) -> None:
    """Print the lines, or write them to --output (checked beforehand) at once: never half a file."""
    if output is None:
        for line in lines:
            typer.echo(line)
        return
    from vaegen.files import write_atomically

    text = "".join(f"{line}\n" for line in lines)
    write_atomically(output, lambda handle: handle.write(text.encode("utf-8")))
    note(f"wrote {output}")


def load_model(checkpoint: Path | None, device: str | torch.device | None, tunes: bool = False) -> SentenceGenerator:
    """The model named, found, or shipped (for `tunes`, the one of whole ci by tune); stderr says which shipped one."""
    from vaegen import checkpoint as checkpoints
    from vaegen.generator import load

    location = checkpoints.locate(checkpoint, tunes)
    if location in (checkpoints.BUNDLED, checkpoints.BUNDLED_TUNES):
        which = "whole Song ci by tune" if location == checkpoints.BUNDLED_TUNES else "Song ci lines"
        note(f"no --checkpoint, $VAEGEN_CHECKPOINT or ./vaegen.pt: using the {which} model that ships "
             f"with vaegen; train your own with `vaegen train CORPUS`")
    return load(location, device)
