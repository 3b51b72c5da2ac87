"""Whole Song ci by tune: format, rhyme, diversity and copying of samples from a conditional model,
beside the training ci of the same tunes measured the same way (vaegen.songci.ci_metrics).

    python bench/songci.py --checkpoint runs/songci-ci/vae.pt [--train data/songci/ci.train.tsv]
        [--tunes 50] [--per-tune 5] [--top-p 1.0] [--temperature 1.0] [--rhyme] [--seed 0] [--show 10] [--out FILE]

For each of the model's --tunes most common tunes, --per-tune ci are sampled with `--tune`, each in a
form drawn by the tune's frequency. Format accuracy: the share written exactly in the form drawn (for
the training ci: in the tune's most common form). Rhyme consistency: the mean over
ci of the share of sentence ends in the ci's most common rhyme, under each scheme of
`vaegen.songci.rhymes` (pinyin finals, Pingshui rhyme groups); the training figure is over every
training ci of those tunes, and the chance row over the same ci with their sentence-end characters
shuffled across them (what a scheme scores without rhymes); --rhyme samples with rhymes held
(`vaegen sample --rhyme`, by the default scheme). Distinct-1/2 over characters, beside as many
training ci (--per-tune of each tune, drawn with --seed). Copies: clauses of 5 characters or more
found verbatim in the training ci.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import time
from pathlib import Path

from common import ROOT, machine, table

import vaegen
from vaegen import Strategy
from vaegen.core.data import read_lines, split_labels
from vaegen.core.metrics import distinct_n
from vaegen.songci.ci_metrics import copied_share, format_accuracy, mean_rhyme_consistency
from vaegen.songci.forms import MARKS, SENTENCE_ENDS
from vaegen.songci.rhymes import SCHEMES

SENTENCE_END = re.compile(f"[^{MARKS}](?=[{SENTENCE_ENDS}])")  # the last character of a sentence: where ci rhyme


def shuffled_ends(texts: list[str], rng: random.Random) -> list[str]:
    """The texts with their sentence-end characters shuffled across them: each keeps its form and its
    number of rhyme positions, and rhymes as much as chance does."""
    ends = [match.group() for text in texts for match in SENTENCE_END.finditer(text)]
    rng.shuffle(ends)
    drawn = iter(ends)
    return [SENTENCE_END.sub(lambda _: next(drawn), text) for text in texts]


def rhyme_cells(texts: list[str]) -> list[str]:
    """The texts' mean rhyme consistency under each scheme, as table cells."""
    return [f"{mean_rhyme_consistency(texts, scheme):.3f}" for scheme in SCHEMES]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--train", type=Path, default=ROOT / "data" / "songci" / "ci.train.tsv")
    parser.add_argument("--tunes", type=int, default=50)
    parser.add_argument("--per-tune", type=int, default=5)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--top-p", type=float, default=1.0)
    parser.add_argument("--rhyme", action="store_true",
                        help="hold every sentence end to the first one's rhyme (rhymes.DEFAULT_SCHEME)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--show", type=int, default=10, help="complete ci to print, one per tune")
    parser.add_argument("--out", type=Path, help="write every sample here as JSON lines")
    args = parser.parse_args()
    print(machine())
    model = vaegen.load(args.checkpoint, "cpu")
    if model.labels is None:
        raise SystemExit(f"{args.checkpoint} has no tunes: train it on 'tune<TAB>ci' lines (configs/songci-ci.toml)")
    names, texts = split_labels(read_lines(args.train), args.train)
    tunes = model.labels.known[: args.tunes]
    strategy = Strategy(temperature=args.temperature, top_p=args.top_p, rhyme=args.rhyme)
    started = time.perf_counter()
    samples = {tune.name: model.sample(args.per_tune, strategy, tune=tune.name, seed=args.seed + i)
               for i, tune in enumerate(tunes)}
    seconds = time.perf_counter() - started
    generated = [g.text for ci in samples.values() for g in ci]
    forms = [g.form or "" for ci in samples.values() for g in ci]  # each drawn by the tune's frequency
    chosen = {tune.name for tune in tunes}
    training = [text for name, text in zip(names, texts) if name in chosen]
    texts_of = {tune.name: [text for name, text in zip(names, texts) if name == tune.name] for tune in tunes}
    rng = random.Random(args.seed)
    reference = [text for tune in tunes for text in rng.sample(texts_of[tune.name], min(args.per_tune, tune.count))]
    copied, counted = copied_share(generated, texts)
    held = set(reference)
    own_copied, own_counted = copied_share(reference, [text for text in texts if text not in held])
    rows: list[list[object]] = [
        ["samples", len(generated), f"{100 * format_accuracy(generated, forms):.1f}%",
         *rhyme_cells(generated), f"{distinct_n(generated, 1, True):.3f}",
         f"{distinct_n(generated, 2, True):.3f}", f"{100 * copied / counted:.1f}% of {counted:,}"],
        ["training ci", f"{len(training):,} (distinct-n: {len(reference)})",
         f"{100 * format_accuracy(training, [model.labels.find(n)[1].form for n, t in zip(names, texts) if n in chosen]):.1f}%",
         *rhyme_cells(training), f"{distinct_n(reference, 1, True):.3f}",
         f"{distinct_n(reference, 2, True):.3f}", f"{100 * own_copied / own_counted:.1f}% of {own_counted:,}"],
        ["training ci, sentence ends shuffled (chance)", f"{len(training):,}", "–",
         *rhyme_cells(shuffled_ends(training, random.Random(args.seed))), "–", "–", "–"],
    ]
    print(f"{args.checkpoint}: {len(tunes)} tunes x {args.per_tune} samples, {strategy}, seeds "
          f"{args.seed}..{args.seed + len(tunes) - 1}, {seconds:.1f} s")
    print(table(["ci", "count", "format accuracy", *(f"rhyme consistency ({scheme})" for scheme in SCHEMES),
                 "distinct-1", "distinct-2", "clauses >= 5 chars copied"], rows))
    print("\nthe training row's copies: its ci's clauses found in the other training ci")
    for tune in tunes[: args.show]:
        print(f"\n{tune.name} ({tune.form})\n{samples[tune.name][0].text}")
    if args.out is not None:
        args.out.write_text("".join(json.dumps({"tune": name, "text": g.text, "logprob": g.logprob}, ensure_ascii=False)
                                    + "\n" for name, ci in samples.items() for g in ci), encoding="utf-8")


if __name__ == "__main__":
    main()
