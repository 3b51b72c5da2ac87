"""Every form of a tune, written on request: format accuracy of ci sampled in the main and variant forms of
the most common tunes, each form checked against the forms of that tune in the raw corpus.

    python bench/songci_forms.py --checkpoint runs/songci-ci/vae.pt --raw ../shared/data/chinese-poetry-songci
        [--tunes 10] [--forms 3] [--per-form 5] [--seed 0]

For each of the model's --tunes most common tunes and each of its --forms most common forms (as
`vaegen tunes NAME` ranks them), --per-form ci are sampled with `--form RANK` under the default
decoding. A form counts as written when `form_of` of the text is the form asked for. The raw column
says how many ci of the tune in the raw JSON (paragraphs joined, tune aliases resolved as
data/songci/build.py does) have that form, so that the forms asked for are the corpus's own.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

from common import ROOT, machine, table

import vaegen
from vaegen.songci.forms import form_of

sys.path.insert(0, str(ROOT / "data" / "songci"))
from build import read_ci  # type: ignore[import-not-found]  # the corpus builder's reader of the raw JSON


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--raw", type=Path, required=True, help="the chinese-poetry songci JSON folder")
    parser.add_argument("--tunes", type=int, default=10)
    parser.add_argument("--forms", type=int, default=3)
    parser.add_argument("--per-form", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(machine())
    model = vaegen.load(args.checkpoint, "cpu")
    if model.labels is None:
        raise SystemExit(f"{args.checkpoint} has no tunes: train it on 'tune<TAB>ci' lines (configs/songci-ci.toml)")
    raw: dict[str, Counter[str]] = {}
    for name, paragraphs in read_ci(args.raw):
        raw.setdefault(name, Counter())[form_of("".join(paragraphs))] += 1
    rows: list[list[object]] = []
    written = asked = 0
    for i, tune in enumerate(model.labels.known[: args.tunes]):
        for rank, (form, count) in enumerate(tune.forms[: args.forms], start=1):
            samples = model.sample(args.per_form, tune=tune.name, form=rank, seed=args.seed + 100 * i + rank)
            right = sum(form_of(g.text) == form for g in samples)
            written, asked = written + right, asked + len(samples)
            rows.append([tune.name, rank, form if len(form) <= 40 else form[:37] + "...", count,
                         raw.get(tune.name, Counter())[form], f"{right}/{len(samples)}"])
    print(table(["tune", "rank", "form", "training ci", "raw ci", "written in it"], rows))
    print(f"\nformat accuracy over {asked} ci in {len(rows)} forms: {100 * written / asked:.1f}%; "
          f"forms absent from the raw corpus: {sum(row[4] == 0 for row in rows)}")


if __name__ == "__main__":
    main()
