"""Whole Song ci by tune: format, rhyme, diversity and copying of samples from a conditional model,
beside the training ci of the same tunes measured the same way (vaegen.ci_metrics).

    python bench/songci.py --checkpoint runs/songci-ci/vae.pt [--train data/songci/ci.train.tsv]
        [--tunes 50] [--per-tune 5] [--top-p 1.0] [--temperature 1.0] [--rhyme] [--seed 0] [--show 10] [--out FILE]

For each of the model's --tunes most common tunes, --per-tune ci are sampled with `--tune`. Format
accuracy: the share written exactly in the tune's most common form. Rhyme consistency: the mean over
ci of the share of sentence ends in the ci's most common rhyme; the training figure is over every
training ci of those tunes; --rhyme samples with rhymes held (`vaegen sample --rhyme`). Distinct-1/2 over characters, beside as many training ci (--per-tune of
each tune, drawn with --seed). Copies: clauses of 5 characters or more found verbatim in the training ci.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

from common import ROOT, machine, table

import vaegen
from vaegen import Strategy
from vaegen.ci_metrics import copied_share, format_accuracy, mean_rhyme_consistency
from vaegen.data import read_lines, split_labels
from vaegen.metrics import distinct_n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--train", type=Path, default=ROOT / "data" / "songci" / "ci.train.tsv")
    parser.add_argument("--tunes", type=int, default=50)
    parser.add_argument("--per-tune", type=int, default=5)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--top-p", type=float, default=1.0)
    parser.add_argument("--rhyme", action="store_true", help="hold every sentence end to the first one's rhyme")
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
    forms = [tune.form for tune in tunes for _ in range(args.per_tune)]
    chosen = {tune.name for tune in tunes}
    training = [text for name, text in zip(names, texts) if name in chosen]
    by_tune = {tune.name: [text for name, text in zip(names, texts) if name == tune.name] for tune in tunes}
    rng = random.Random(args.seed)
    reference = [text for tune in tunes for text in rng.sample(by_tune[tune.name], min(args.per_tune, tune.count))]
    copied, counted = copied_share(generated, texts)
    held = set(reference)
    own_copied, own_counted = copied_share(reference, [text for text in texts if text not in held])
    rows: list[list[object]] = [
        ["samples", len(generated), f"{100 * format_accuracy(generated, forms):.1f}%",
         f"{mean_rhyme_consistency(generated):.3f}", f"{distinct_n(generated, 1, True):.3f}",
         f"{distinct_n(generated, 2, True):.3f}", f"{100 * copied / counted:.1f}% of {counted:,}"],
        ["training ci", f"{len(training):,} (distinct-n: {len(reference)})",
         f"{100 * format_accuracy(training, [model.labels.find(n)[1].form for n, t in zip(names, texts) if n in chosen]):.1f}%",
         f"{mean_rhyme_consistency(training):.3f}", f"{distinct_n(reference, 1, True):.3f}",
         f"{distinct_n(reference, 2, True):.3f}", f"{100 * own_copied / own_counted:.1f}% of {own_counted:,}"],
    ]
    print(f"{args.checkpoint}: {len(tunes)} tunes x {args.per_tune} samples, {strategy}, seeds "
          f"{args.seed}..{args.seed + len(tunes) - 1}, {seconds:.1f} s")
    print(table(["ci", "count", "format accuracy", "rhyme consistency", "distinct-1", "distinct-2",
                 "clauses >= 5 chars copied"], rows))
    print("\nthe training row's copies: its ci's clauses found in the other training ci")
    for tune in tunes[: args.show]:
        print(f"\n{tune.name} ({tune.form})\n{samples[tune.name][0].text}")
    if args.out is not None:
        args.out.write_text("".join(json.dumps({"tune": name, "text": g.text, "logprob": g.logprob}, ensure_ascii=False)
                                    + "\n" for name, ci in samples.items() for g in ci), encoding="utf-8")


if __name__ == "__main__":
    main()
