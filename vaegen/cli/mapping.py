"""`vaegen map`: the map of a model's latent space that `vaegen serve` shows, computed from a corpus and written to a
file. The maps that ship with vaegen's models are made with it from their corpus's test split, e.g.

    vaegen map data/songci/test.txt --model songci-lines -o vaegen/models/songci-lines.map.pt

and `vaegen serve` shows a shipped model's map at once, where a map of its own would take minutes to build.
"""

from __future__ import annotations

import sys
from importlib.util import find_spec
from pathlib import Path
from typing import Annotated

import typer

from vaegen.cli.options import CheckpointOption, DeviceOption, ForceOption, ModelOption, note
from vaegen.core.config import MAP_POINTS, MAX_MAP_POINTS, MIN_MAP_POINTS
from vaegen.core.errors import VaegenError


class Bar:
    """A progress bar on stderr for each stage of a map's build (the `Progress` it is told)."""

    def __init__(self) -> None:
        from tqdm import tqdm

        self.stage, self.bar, self.tqdm = "", None, tqdm

    def __call__(self, stage: str, done: int, total: int) -> None:
        if stage != self.stage:
            self.close()
            self.stage = stage
            if stage == "laying out":
                note(f"laying out {total:,} sentences by their neighbours in z (t-SNE)")
            else:
                self.bar = self.tqdm(total=total, desc=stage, unit="sentence", file=sys.stderr, dynamic_ncols=True)
        if self.bar is not None:
            self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def make_map(
    corpus: Annotated[Path, typer.Argument(exists=True, dir_okay=False, show_default=False, help="The sentences to "
                                           "map, one per line ('tune<TAB>text' lines for a model trained on tunes), "
                                           "e.g. a test split.")],
    output: Annotated[Path, typer.Option("--output", "-o", show_default=False, help="The map file to write, e.g. "
                                         "vaegen/models/NAME.map.pt beside a shipped model.")],
    points: Annotated[int, typer.Option(min=MIN_MAP_POINTS, max=MAX_MAP_POINTS, help="Sentences on the map, drawn "
                                        "evenly from CORPUS when it has more.")] = MAP_POINTS,
    checkpoint: CheckpointOption = None,
    model_name: ModelOption = None,
    device: DeviceOption = None,
    force: ForceOption = False,
) -> None:
    """Compute the map of a model's latent space that `vaegen serve` shows, from CORPUS, and write it to a file:
    the sentences, their codes (posterior means, in float16), their places by neighbours in z (t-SNE) and on the
    codes' two principal axes, and how well each layout keeps each sentence's 10 nearest neighbours in z (printed).
    Name the model with --model or --checkpoint: a map keeps the hash of the file it was made with, and `vaegen
    serve` shows a map that ships with a model (vaegen/models/NAME.map.pt) only for that very file."""
    from vaegen.core import checkpoint as checkpoints
    from vaegen.core.files import check_writable, write_atomically
    from vaegen.generate.generator import load
    from vaegen.generate.landscape import build, fingerprint, write

    if find_spec("sklearn") is None:
        raise VaegenError("vaegen map lays the map out with scikit-learn: pip install 'vaegen[serve]'")
    if model_name is None and checkpoint is None:
        raise VaegenError("name the model whose map this is: --model NAME (`vaegen models` lists them) or "
                          "--checkpoint FILE")
    check_writable(output, force, "--output", "NAME.map.pt")
    location = checkpoints.locate(checkpoint, model=model_name)
    model = load(location, device)
    bar = Bar()
    try:
        landscape = build(model, corpus, points, checkpoint=fingerprint(location), progress=bar)
    finally:
        bar.close()
    write_atomically(output, lambda handle: write(handle, landscape))
    typer.echo(f"map of {landscape.headline()}")
    note(f"wrote {output} ({output.stat().st_size / 1024:,.0f} KiB)")
