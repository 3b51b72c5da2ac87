"""Decoding strategies judged for fluency: N samples of one checkpoint under each strategy, their perplexity
under an n-gram judge of the training text (vaegen.eval.fluency) and their diversity, beside held-out human text's.

    python bench/fluency.py --checkpoint vaegen/models/songci-lines.pt --train data/songci/train.txt
        --held-out data/songci/test.txt [--n 500] [--seed 0] [--show 10] [--out FILE]
    python bench/fluency.py --train data/songci/train.txt --held-out data/songci/test.txt --judge-orders 2 3 4 5

Strategies (--strategies, by default): temperature 1, 0.9, 0.8, 0.7; top-p 0.9 and 0.8; greedy; beam 5
(any "temperature X" or "top-p X" may be added); each from the same N codes
z ~ N(0, I) (seed --seed), so the rows differ by decoding alone. A model of tunes draws the tunes by
their training frequency, and 'tune<TAB>text' files are read as their texts. The human row: the judge
perplexity of every held-out text, distinct-n and self-BLEU of N of them drawn with --seed (both fall
as a set grows, so they are compared at the same size). The closest strategy is the one of least
`fluency.human_gap`: the farther of |ln(ppl / human ppl)| / ln 1.15 and |distinct-2 - human
distinct-2| / 0.05, at most 1 when both are within those tolerances.

--judge-orders instead fits a judge of each order on --train and prints its perplexity of --held-out:
how the judge's order was chosen.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

from common import machine, table

import vaegen
from vaegen import Strategy
from vaegen.core.data import read_lines, split_labels
from vaegen.core.metrics import units
from vaegen.eval.fluency import TextFigures, cached_judge, human_gap, perplexity, text_figures, train_judge

STRATEGIES = {
    "temperature 1": Strategy(),
    "temperature 0.9": Strategy(temperature=0.9),
    "temperature 0.8": Strategy(temperature=0.8),
    "temperature 0.7": Strategy(temperature=0.7),
    "top-p 0.9": Strategy(top_p=0.9),
    "top-p 0.8": Strategy(top_p=0.8),
    "greedy": Strategy(greedy=True),
    "beam 5": Strategy(beam=5),
}


def strategy_of(name: str) -> Strategy:
    """A strategy by its table name: one of STRATEGIES, or "temperature X" / "top-p X" for another X."""
    if name in STRATEGIES:
        return STRATEGIES[name]
    kind, _, value = name.rpartition(" ")
    if kind == "temperature":
        return Strategy(temperature=float(value))
    if kind == "top-p":
        return Strategy(top_p=float(value))
    raise SystemExit(f"unknown strategy {name!r}: use {', '.join(STRATEGIES)}, 'temperature X' or 'top-p X'")


def texts(path: Path) -> list[str]:
    """The texts of a file: of 'tune<TAB>text' lines when every line has a tab, else the lines."""
    lines = read_lines(path)
    return split_labels(lines, path)[1] if all("\t" in line for line in lines) else lines


def row(name: str, figures: TextFigures, length: float, gap: float | None, seconds: float | None) -> list[object]:
    return [name, f"{figures.judge_ppl:.1f}", f"{figures.distinct_1:.3f}", f"{figures.distinct_2:.3f}",
            f"{figures.self_bleu:.2f}", f"{length:.1f}", "—" if gap is None else f"{gap:.3f}",
            "—" if seconds is None else f"{seconds:.1f}"]


def mean_units(judged: list[str], cjk: bool) -> float:
    return sum(len(units(text, cjk)) for text in judged) / len(judged)


def judge_orders(train: list[str], held_out: list[str], orders: list[int]) -> None:
    rows: list[list[object]] = []
    for order in orders:
        started = time.perf_counter()
        judge = train_judge(train, order)
        fitted = time.perf_counter() - started
        rows.append([order, f"{perplexity(judge, held_out):.2f}", f"{fitted:.1f}"])
    print(table(["order", f"held-out perplexity per {judge.unit}", "fit s"], rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path)
    parser.add_argument("--train", type=Path, required=True, help="the training text the judge learns from")
    parser.add_argument("--held-out", type=Path, required=True, help="human text the samples are set beside")
    parser.add_argument("--n", type=int, default=500, help="samples per strategy")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--show", type=int, default=10,
                        help="samples to print of the closest strategy and of the first one")
    parser.add_argument("--out", type=Path, help="write every sample here as JSON lines")
    parser.add_argument("--judge-orders", type=int, nargs="+", help="only compare judges of these orders")
    parser.add_argument("--strategies", nargs="+", default=list(STRATEGIES),
                        help="the rows to measure, e.g. 'temperature 0.85' 'top-p 0.8' (default: the eight above)")
    args = parser.parse_args()
    print(machine())
    train, held_out = texts(args.train), texts(args.held_out)
    if args.judge_orders:
        judge_orders(train, held_out, args.judge_orders)
        return
    if args.checkpoint is None:
        parser.error("--checkpoint is needed unless --judge-orders is given")
    started = time.perf_counter()
    judge = cached_judge(train)
    print(f"judge: {judge.order}-gram over {judge.unit}s of {len(train):,} texts of {args.train} "
          f"({time.perf_counter() - started:.1f} s, fitted or read from the cache)")
    model = vaegen.load(args.checkpoint, "cpu")
    samples: dict[str, list[str]] = {}
    seconds: dict[str, float] = {}
    for name in args.strategies:
        started = time.perf_counter()
        samples[name] = [g.text for g in model.sample(args.n, strategy_of(name), seed=args.seed)]
        seconds[name] = time.perf_counter() - started
    figures = {name: text_figures(judge, drawn, drawn) for name, drawn in samples.items()}
    human = text_figures(judge, held_out, random.Random(args.seed).sample(held_out, min(args.n, len(held_out))))
    gaps = {name: human_gap(sample, human) for name, sample in figures.items()}
    closest = min(gaps, key=lambda name: gaps[name])
    rows = [row(f"**{name}**" if name == closest else name, figures[name],
                mean_units(samples[name], judge.cjk), gaps[name], seconds[name]) for name in args.strategies]
    rows.append(row(f"held-out text ({human.texts:,}; diversity over {human.diversity_texts:,})", human,
                    mean_units(held_out, judge.cjk), None, None))
    print(f"{args.checkpoint}: {args.n} samples per strategy, seed {args.seed}; held out: {args.held_out}")
    print(table(["strategy", f"judge perplexity per {judge.unit}", "distinct-1", "distinct-2", "self-BLEU",
                 f"mean {judge.unit}s", "gap to human", "sampling s"], rows))
    print(f"\nclosest to the held-out text: {closest} (gap {gaps[closest]:.3f})")
    for name in dict.fromkeys([closest, *args.strategies[:1]]):
        print(f"\n{name}:\n" + "\n".join(samples[name][: args.show]))
    if args.out is not None:
        args.out.write_text("".join(json.dumps({"strategy": name, "text": text}, ensure_ascii=False) + "\n"
                                    for name, drawn in samples.items() for text in drawn), encoding="utf-8")


if __name__ == "__main__":
    main()
