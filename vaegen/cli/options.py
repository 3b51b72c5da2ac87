"""The options the commands share, declared once, and the input and output every command does alike.

A shared option is an `Annotated` alias declared once here. Each command names every option it takes in its
own `def`, typed with these aliases, as typer documents: the signature a reader (and mypy) sees is the
one `--help` lists, with each command's own defaults (the generation commands differ on --greedy/--sample).
The checks then turn those values into small ones before any model is loaded: `parse_strategy` the
library's decoding `Strategy`, refusing combinations that would be silently ignored; `check_output` an
`Output`, refusing a bad --output; `parse_form` a form's rank or its text. Choices come from the library's
constants (`config.PRECISIONS`, `ANNEAL_SCHEDULES`, `INTERPOLATION_PATHS`), so the CLI cannot offer a value
the library refuses. Notes go to stderr; results go to stdout, or to --output written whole. Torch is
imported inside the functions, so that `vaegen --help` answers at once.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from vaegen.core.config import ANNEAL_SCHEDULES, INTERPOLATION_PATHS, PRECISIONS, SAMPLING_TEMPERATURE, SAMPLING_TOP_P
from vaegen.core.errors import VaegenError

if TYPE_CHECKING:
    import torch

    from vaegen.generate.decoding import Strategy
    from vaegen.generate.generator import SentenceGenerator

MAX_SENTENCES = 1_000_000
MAX_STEPS = 1_000

# Choices as enums built from those constants (mypy cannot list members computed at run time)
Precision = Enum("Precision", {name: name for name in PRECISIONS}, type=str)  # type: ignore[misc]
AnnealSchedule = Enum("AnnealSchedule", {name: name for name in ANNEAL_SCHEDULES}, type=str)  # type: ignore[misc]
LatentPath = Enum("LatentPath", {name: name for name in INTERPOLATION_PATHS}, type=str)  # type: ignore[misc]

CheckpointOption = Annotated[Path | None, typer.Option(
    "--checkpoint", "-c", show_default=False,
    help="Checkpoint written by `vaegen train`. Default: $VAEGEN_CHECKPOINT, then ./vaegen.pt, then the Song ci "
         "model that ships with vaegen.")]
ModelOption = Annotated[str | None, typer.Option(
    "--model", "-m", show_default=False,
    help="A model that ships with vaegen, by name (`vaegen models` lists them), e.g. en; instead of --checkpoint.")]
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


@dataclass(frozen=True)
class Output:
    """What a generation command prints, checked: JSON lines (with each code z) or text, to a file or stdout."""

    as_json: bool
    with_z: bool
    path: Path | None  # None: stdout


def parse_strategy(*, greedy: bool, temperature: float | None, top_k: int, top_p: float | None, beam: int,
                   length_penalty: float, rhyme: bool, grammar: bool) -> Strategy:
    """The decoding the options ask for, refusing sampling options that greedy decoding or beam search would
    silently ignore. Sampling with none of them given takes the measured default, SAMPLING_TEMPERATURE and
    SAMPLING_TOP_P; one given leaves the others at the model's own distribution."""
    from vaegen.generate.decoding import Strategy

    shaped = temperature is not None or top_k or top_p is not None
    if shaped and (greedy or beam):
        raise VaegenError("--temperature, --top-k and --top-p shape sampling; drop them, or drop "
                          f"{'--beam' if beam else '--greedy'} (add --sample where greedy is the default)")
    if not (shaped or greedy or beam):  # sampling's default
        temperature, top_p = SAMPLING_TEMPERATURE, SAMPLING_TOP_P
    return Strategy(greedy=greedy, temperature=1.0 if temperature is None else temperature, top_k=top_k,
                    top_p=1.0 if top_p is None else top_p, beam=beam, length_penalty=length_penalty,
                    rhyme=rhyme, grammar=grammar)


def parse_form(form: str | None, tune: str | None) -> str | int | None:
    """--form as a rank (digits) or a form written out, checked before any model is loaded; a rank's range
    depends on the tune, which the model knows."""
    if form is None:
        return None
    if tune is None:
        raise VaegenError("--form needs --tune: a form belongs to a tune (`vaegen tunes NAME` lists its forms)")
    if form.isascii() and form.isdigit():
        return int(form)
    from vaegen.songci.forms import slots

    try:
        slots(form)
    except ValueError:
        raise VaegenError(f"--form {form!r} is neither a rank nor a form; give a rank in `vaegen tunes {tune}` "
                          "or a form written as it lists one: each clause as its length and mark, e.g. "
                          "7。7。7。7，7。7。") from None
    return form


def note(message: str) -> None:
    """A progress note on stderr; under torchrun only rank 0 speaks."""
    if os.environ.get("RANK", "0") == "0":
        typer.echo(message, err=True)


def check_output(path: Path | None, force: bool, example: str, *, as_json: bool = False,
                 with_z: bool = False) -> Output:
    """--output and the way it is written, as one `Output`; a bad path is refused before the work, not after it."""
    if path is not None:
        from vaegen.core.files import check_writable

        check_writable(path, force, "--output", example)
    return Output(as_json=as_json, with_z=with_z, path=path)


def emit(lines: Iterable[str], output: Path | None) -> None:
    """Print the lines, or write them to --output (checked beforehand) at once: never half a file."""
    if output is None:
        for line in lines:
            typer.echo(line)
        return
    from vaegen.core.files import write_atomically

    text = "".join(f"{line}\n" for line in lines)
    write_atomically(output, lambda handle: handle.write(text.encode("utf-8")))
    note(f"wrote {output}")


def load_model(checkpoint: Path | None, model_name: str | None, device: str | torch.device | None,
               by_tune: bool = False) -> SentenceGenerator:
    """The model named (a checkpoint, or a shipped model by `model_name`), found, or shipped by default
    (`by_tune`: the one of whole ci by tune); stderr says which default."""
    from vaegen.core import checkpoint as checkpoints
    from vaegen.generate.generator import load

    location = checkpoints.locate(checkpoint, by_tune, model_name)
    if (shipped := checkpoints.shipped_note(checkpoint, model_name, location)) is not None:
        note(shipped)
    return load(location, device)
