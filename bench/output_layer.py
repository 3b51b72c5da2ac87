"""The output layer, full softmax against adaptive (model.output_head): training speed and the validation figures
at the same number of steps, on PTB at the reference shape or on any corpus and preset.

    python bench/output_layer.py --data ../shared/data/ptb [--heads 0 1000 2000] [--steps 1000]
        [--config configs/ptb-reference.toml] [--set section.key=value ...]
    python bench/output_layer.py --train data/songci/ci.train.tsv --valid data/songci/ci.valid.tsv
        --config configs/songci-ci.toml --precision auto --heads 0 1000 --steps 300

Each head is a real `vaegen train` process (0: the full softmax) stopped after --steps steps; throughput is
averaged over the steps after --warmup, the validation figures are those of the end of the run (beta = 1), and
minutes per epoch are the training corpus's lines at that throughput. MFLOP/token counts the output layer alone,
forward and backward, each token paying the head and its own cluster (`common.output_flops`), over the training
corpus's own token counts.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from common import ROOT, machine, table
from train_throughput import measure


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="folder with ptb.train.txt and ptb.valid.txt")
    parser.add_argument("--train", type=Path, help="a training corpus (in place of --data)")
    parser.add_argument("--valid", type=Path, help="its validation corpus")
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "ptb-reference.toml")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "auto"])
    parser.add_argument("--heads", type=int, nargs="+", default=[0, 1000, 2000],
                        help="model.output_head; 0: full, -1: the default for the vocabulary")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="config override, repeatable")
    args = parser.parse_args()
    if args.data is not None:
        args.train, args.valid = args.data / "ptb.train.txt", args.data / "ptb.valid.txt"
    if args.train is None or args.valid is None:
        parser.error("give --data, or --train and --valid")
    train, valid = args.train.resolve(), args.valid.resolve()  # the runs start in the project root
    lines = sum(1 for line in train.read_text(encoding="utf-8").splitlines() if line.strip())
    print(machine())
    rows, base = [], None
    for head in args.heads:
        result = measure(train, valid, args.config.resolve(), [f"train.precision={args.precision}",
                                                               f"model.output_head={head}", *args.overrides],
                         args.steps, args.warmup)
        base = base or result["sentences_per_s"]
        name = {0: "full", -1: f"default ({result['head']})"}.get(head, head)
        rows.append([name, f"{result['output_flops'] / 1e6:.1f}", f"{result['sentences_per_s']:,.1f}",
                     f"{result['sentences_per_s'] / base:.2f}x", f"{lines / result['sentences_per_s'] / 60:.1f}",
                     f"{result['tokens_per_s']:,.0f}", f"{result['elbo']:.2f}", f"{result['rec']:.2f}",
                     f"{result['kl']:.2f}", f"{result['peak_rss_mib']:,.0f}"])
    print(f"{args.steps} steps each, {args.precision}; validation at beta = 1 after the last step")
    print(table(["output head", "output MFLOP/token", "sentences/s", "vs first", "minutes/epoch", "tokens/s",
                 "valid -ELBO", "valid NLL", "valid KL", "peak RSS MiB"], rows))


if __name__ == "__main__":
    main()
