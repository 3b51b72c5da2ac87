"""The generation commands: sample, reconstruct, encode, interpolate and complete.

Each is a thin shell over one `SentenceGenerator` method: parse, load the model, call, print. Each names
every option it takes in its own signature, with the shared aliases of `options` and its own defaults
(reconstruct and interpolate decode greedily unless told otherwise, sample and complete sample), so that
its `def` reads as its `--help` does; it turns them into a `Strategy`, an `Output` and a form before it
loads a model, so that a bad combination is refused at once.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from vaegen.cli.options import (
    MAX_SENTENCES,
    MAX_STEPS,
    BeamOption,
    CheckpointOption,
    DeviceOption,
    ForceOption,
    FormOption,
    GrammarOption,
    GreedyOption,
    InputOption,
    JsonOption,
    LatentPath,
    LengthPenaltyOption,
    MaxLengthOption,
    ModelOption,
    Output,
    OutputOption,
    RhymeOption,
    SeedOption,
    TemperatureOption,
    TextsArgument,
    TopKOption,
    TopPOption,
    TuneOption,
    WithZOption,
    check_output,
    emit,
    load_model,
    note,
    parse_form,
    parse_strategy,
)
from vaegen.core.errors import VaegenError

if TYPE_CHECKING:
    from vaegen.generate.generator import Generation, SentenceGenerator

# encode's own meanings of --output, --json and --tune: it writes codes, not text, and reads a tune, not writes to one
CodesOutputOption = Annotated[Path | None, typer.Option("--output", "-o", show_default=False, help="Write to this file "
                                                        "instead of stdout; a name ending in .npy gets a float32 "
                                                        "array (N, 2, latent_dim) of mu and sigma.")]
CodesJsonOption = Annotated[bool, typer.Option("--json", help="Taken as by every generation command: the output is "
                                               "JSON lines already (refused with an .npy --output).")]
GivenTuneOption = Annotated[str | None, typer.Option("--tune", show_default=False, help="For a model trained on "
                                                     "tunes (labels, e.g. whole Song ci): the tune the sentences "
                                                     "were written to, whose embedding joins q(z|x, c). Without "
                                                     "it, such a model reads 'tune<TAB>text' lines.")]


def _texts(texts: list[str] | None, source: Path | None) -> list[str]:
    """The sentences given as arguments or, one per line, in --input: one of the two."""
    from vaegen.core.data import read_lines

    if bool(texts) == (source is not None):
        raise VaegenError("give the sentences as arguments or with --input FILE, one of the two")
    return read_lines(source) if source is not None else list(texts or [])


def _tunes(model: SentenceGenerator, lines: list[str], tune: str | None) -> tuple[list[str], str | list[str] | None]:
    """The texts and their tunes: --tune for all, or for a model trained on tunes without --tune, each line
    read as 'tune<TAB>text' (as in its training corpus) where every line holds a tab."""
    if model.labels is None or tune is not None:
        return lines, tune
    from vaegen.core.data import examples_of

    examples = examples_of(lines, Path("the input"))
    return examples.texts, examples.labels


def _model(checkpoint: Path | None, model_name: str | None, device: str | None, tune: str | None,
           form: str | int | None) -> SentenceGenerator:
    """The model the options name (the shipped one of whole ci when they ask for a tune), with a warning when
    --form writes out a form that is not among the tune's: the masks hold the decoding to it all the same."""
    model = load_model(checkpoint, model_name, device, tune is not None)
    if isinstance(form, str) and tune is not None and model.labels is not None:
        known = model.labels.find(tune)[1]
        if form not in dict(known.forms):
            note(f"warning: the forms this model knows of {known.name} (`vaegen tunes {known.name}`) do not include "
                 f"{form}; writing in it all the same")
    return model


def _warn_unknown(model: SentenceGenerator, texts: list[str]) -> None:
    """A warning for text the tokenizer never saw in training: the model reads it as <unk>."""
    for text in texts:
        if unknown := model.tokenizer.unknown(text):
            note(f"warning: {''.join(dict.fromkeys(unknown))!r} in {text!r} never appeared in training; "
                 f"encoded as <unk>")


def _show(generations: list[Generation], output: Output, tune: str | None) -> None:
    """Print the texts, each after its tune (and a tab) where the tunes were not chosen by --tune; or JSON."""
    if not output.as_json:
        emit((g.text if g.tune is None or tune else f"{g.tune}\t{g.text}" for g in generations), output.path)
        return
    rows = ({**({"tune": g.tune, "form": g.form} if g.tune is not None else {}), "text": g.text,
             "logprob": round(g.logprob, 4),
             **({"z": [round(v, 5) for v in g.z]} if output.with_z else {})} for g in generations)
    emit((json.dumps(row, ensure_ascii=False) for row in rows), output.path)


def sample(
    n: Annotated[int, typer.Option("--n", "-n", min=1, max=MAX_SENTENCES, help="How many sentences.")] = 10,
    near: Annotated[str | None, typer.Option(show_default=False, help="Draw the codes around this sentence's "
                                             "code instead of from the prior: variations on it.")] = None,
    radius: Annotated[float, typer.Option(min=0.0, max=100.0, help="With --near: the standard deviation of the "
                                          "codes around the sentence's (the prior's is 1).")] = 0.5,
    greedy: GreedyOption = False,
    temperature: TemperatureOption = None,
    top_k: TopKOption = 0,
    top_p: TopPOption = None,
    beam: BeamOption = 0,
    length_penalty: LengthPenaltyOption = 1.0,
    max_length: MaxLengthOption = None,
    tune: TuneOption = None,
    form: FormOption = None,
    rhyme: RhymeOption = False,
    grammar: GrammarOption = True,
    seed: SeedOption = None,
    as_json: JsonOption = False,
    with_z: WithZOption = False,
    output: OutputOption = None,
    force: ForceOption = False,
    checkpoint: CheckpointOption = None,
    model_name: ModelOption = None,
    device: DeviceOption = None,
) -> None:
    """Print N sentences decoded from random points of the latent space, z ~ N(0, I), or from points
    around a sentence of your own (--near).

    A model trained on tunes writes to --tune, or to tunes drawn by their frequency in training, each
    printed before its text and a tab; each ci in --form, or in a form drawn by how often its tune used
    each (with --near, the sentence's own)."""
    strategy = parse_strategy(greedy=greedy, temperature=temperature, top_k=top_k, top_p=top_p, beam=beam,
                              length_penalty=length_penalty, rhyme=rhyme, grammar=grammar)
    written = check_output(output, force, "out.txt", as_json=as_json, with_z=with_z)
    parsed_form = parse_form(form, tune)
    model = _model(checkpoint, model_name, device, tune, parsed_form)
    if near is None:
        _show(model.sample(n, strategy, tune=tune, form=parsed_form, seed=seed, max_length=max_length), written, tune)
        return
    _warn_unknown(model, [near])
    _show(model.near(near, n, radius, strategy, tune=tune, form=parsed_form, seed=seed, max_length=max_length),
          written, tune)


def reconstruct(
    texts: TextsArgument = None,
    source: InputOption = None,
    sample_z: Annotated[bool, typer.Option("--sample-z", help="Decode from a draw of q(z|x) instead of its "
                                           "mean.")] = False,
    greedy: GreedyOption = True,
    temperature: TemperatureOption = None,
    top_k: TopKOption = 0,
    top_p: TopPOption = None,
    beam: BeamOption = 0,
    length_penalty: LengthPenaltyOption = 1.0,
    max_length: MaxLengthOption = None,
    tune: TuneOption = None,
    form: FormOption = None,
    rhyme: RhymeOption = False,
    grammar: GrammarOption = True,
    seed: SeedOption = None,
    as_json: JsonOption = False,
    with_z: WithZOption = False,
    output: OutputOption = None,
    force: ForceOption = False,
    checkpoint: CheckpointOption = None,
    model_name: ModelOption = None,
    device: DeviceOption = None,
) -> None:
    """Encode each sentence and decode it again (greedy from the posterior mean unless told otherwise):
    what the code keeps of a sentence."""
    strategy = parse_strategy(greedy=greedy, temperature=temperature, top_k=top_k, top_p=top_p, beam=beam,
                              length_penalty=length_penalty, rhyme=rhyme, grammar=grammar)
    written = check_output(output, force, "out.txt", as_json=as_json, with_z=with_z)
    parsed_form = parse_form(form, tune)
    lines = _texts(texts, source)
    model = _model(checkpoint, model_name, device, tune, parsed_form)
    lines, tunes = _tunes(model, lines, tune)
    _warn_unknown(model, lines)
    _show(model.reconstruct(lines, strategy, tune=tunes, form=parsed_form, sample_z=sample_z, seed=seed,
                            max_length=max_length), written, tune)


def encode(
    texts: TextsArgument = None,
    source: InputOption = None,
    output: CodesOutputOption = None,
    force: ForceOption = False,
    as_json: CodesJsonOption = False,
    tune: GivenTuneOption = None,
    checkpoint: CheckpointOption = None,
    model_name: ModelOption = None,
    device: DeviceOption = None,
) -> None:
    """Print each sentence's posterior q(z|x) = N(mu, sigma^2) as a JSON line {"text", "mu", "sigma"}."""
    npy = output is not None and output.suffix == ".npy"
    if as_json and npy:
        raise VaegenError(f"--json writes JSON lines, and --output {output} names a NumPy array; drop one of the two")
    lines = _texts(texts, source)
    written = check_output(output, force, "codes.npy", as_json=not npy)
    model = load_model(checkpoint, model_name, device, tune is not None)
    lines, tunes = _tunes(model, lines, tune)
    if not model.latent_dim:
        raise VaegenError("this checkpoint is a language model (latent_dim = 0): it has no codes to write; "
                          "use a checkpoint trained with --latent-dim above 0")
    _warn_unknown(model, lines)
    mu, logvar = model.encode(lines, tunes)
    sigma = (0.5 * logvar).exp()
    if written.path is not None and not written.as_json:
        import numpy as np

        from vaegen.core.files import write_atomically

        array = np.stack([mu.float().cpu().numpy(), sigma.float().cpu().numpy()], axis=1)
        write_atomically(written.path, lambda handle: np.save(handle, array))
        note(f"wrote {written.path}: {array.shape[0]} x (mu, sigma) x {array.shape[2]}")
        return
    rows = ({"text": text, "mu": [round(v, 5) for v in m], "sigma": [round(v, 5) for v in s]}
            for text, m, s in zip(lines, mu.tolist(), sigma.tolist()))
    emit((json.dumps(row, ensure_ascii=False) for row in rows), written.path)


def interpolate(
    a: Annotated[str | None, typer.Argument(show_default=False, help="The first sentence.")] = None,
    b: Annotated[str | None, typer.Argument(show_default=False, help="The second sentence.")] = None,
    random: Annotated[bool, typer.Option("--random", help="Draw the endpoints not given from the prior "
                                         "(both, when no sentence is given).")] = False,
    steps: Annotated[int, typer.Option(min=2, max=MAX_STEPS, help="Points on the path, both ends included.")] = 7,
    path: Annotated[LatentPath, typer.Option(help="linear: the straight line; slerp: the great circle, keeping "
                                             "the codes at typical norms.")] = LatentPath["linear"],
    unique: Annotated[bool, typer.Option("--unique", help="Print a sentence only when it differs from the one "
                                         "before it.")] = False,
    greedy: GreedyOption = True,
    temperature: TemperatureOption = None,
    top_k: TopKOption = 0,
    top_p: TopPOption = None,
    beam: BeamOption = 0,
    length_penalty: LengthPenaltyOption = 1.0,
    max_length: MaxLengthOption = None,
    tune: TuneOption = None,
    form: FormOption = None,
    rhyme: RhymeOption = False,
    grammar: GrammarOption = True,
    seed: SeedOption = None,
    as_json: JsonOption = False,
    with_z: WithZOption = False,
    output: OutputOption = None,
    force: ForceOption = False,
    checkpoint: CheckpointOption = None,
    model_name: ModelOption = None,
    device: DeviceOption = None,
) -> None:
    """Walk from the code of A to the code of B and decode each point (greedy unless told otherwise)."""
    strategy = parse_strategy(greedy=greedy, temperature=temperature, top_k=top_k, top_p=top_p, beam=beam,
                              length_penalty=length_penalty, rhyme=rhyme, grammar=grammar)
    written = check_output(output, force, "out.txt", as_json=as_json, with_z=with_z)
    parsed_form = parse_form(form, tune)
    if (a is None or b is None) and not random:
        raise VaegenError("interpolate needs two sentences, A and B; or add --random to draw the missing ones "
                          "from the prior")
    model = _model(checkpoint, model_name, device, tune, parsed_form)
    _warn_unknown(model, [text for text in (a, b) if text is not None])
    _show(model.interpolate(a, b, steps, path.value, strategy, tune=tune, form=parsed_form, unique=unique, seed=seed,
                            max_length=max_length), written, tune)


def complete(
    prefix: Annotated[str, typer.Argument(show_default=False, help="The beginning of a sentence.")],
    n: Annotated[int, typer.Option("--n", "-n", min=1, max=MAX_SENTENCES, help="How many completions.")] = 5,
    candidates: Annotated[int, typer.Option(min=1, max=100_000, help="Codes drawn from the prior and weighted "
                                            "by how well each explains the prefix.")] = 256,
    greedy: GreedyOption = False,
    temperature: TemperatureOption = None,
    top_k: TopKOption = 0,
    top_p: TopPOption = None,
    beam: BeamOption = 0,
    length_penalty: LengthPenaltyOption = 1.0,
    max_length: MaxLengthOption = None,
    tune: TuneOption = None,
    form: FormOption = None,
    rhyme: RhymeOption = False,
    grammar: GrammarOption = True,
    seed: SeedOption = None,
    as_json: JsonOption = False,
    with_z: WithZOption = False,
    output: OutputOption = None,
    force: ForceOption = False,
    checkpoint: CheckpointOption = None,
    model_name: ModelOption = None,
    device: DeviceOption = None,
) -> None:
    """Complete a sentence: codes are drawn from the prior, resampled by the likelihood the decoder gives
    PREFIX under each, and the rest of the sentence is decoded from them. Every line begins with PREFIX;
    the codes that explain it best come first."""
    strategy = parse_strategy(greedy=greedy, temperature=temperature, top_k=top_k, top_p=top_p, beam=beam,
                              length_penalty=length_penalty, rhyme=rhyme, grammar=grammar)
    written = check_output(output, force, "out.txt", as_json=as_json, with_z=with_z)
    parsed_form = parse_form(form, tune)
    model = _model(checkpoint, model_name, device, tune, parsed_form)
    _warn_unknown(model, [prefix])
    _show(model.complete(prefix, n, strategy, tune=tune, form=parsed_form, candidates=candidates, seed=seed,
                         max_length=max_length), written, tune)
