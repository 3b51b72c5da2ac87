"""The output layer, full softmax against adaptive (model.output_head): training speed and the validation figures
at the same number of steps, on PTB at the reference shape.

    python bench/output_layer.py --data ../shared/data/ptb [--heads 0 1000 2000] [--steps 1000]
        [--config configs/ptb-reference.toml] [--set section.key=value ...]

Each head is a real `vaegen train` process (0: the full softmax) stopped after --steps steps, fp32; throughput is
averaged over the steps after --warmup, the validation figures are those of the end of the run (beta = 1).
MFLOP/token counts the output layer alone, forward and backward, each token paying the head and its own cluster
(`common.output_flops`), over the training corpus's own token counts.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from common import ROOT, machine, table
from train_throughput import measure


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="folder with ptb.train.txt and ptb.valid.txt")
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "ptb-reference.toml")
    parser.add_argument("--heads", type=int, nargs="+", default=[0, 1000, 2000], help="model.output_head; 0: full")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="config override, repeatable")
    args = parser.parse_args()
    args.data = args.data.resolve()  # the runs start in the project root
    print(machine())
    rows, base = [], None
    for head in args.heads:
        result = measure(args.data, args.config, ["train.precision=fp32", f"model.output_head={head}",
                                                  *args.overrides], args.steps, args.warmup)
        base = base or result["sentences_per_s"]
        rows.append([head or "full", f"{result['output_flops'] / 1e6:.1f}", f"{result['sentences_per_s']:,.1f}",
                     f"{result['sentences_per_s'] / base:.2f}x", f"{result['tokens_per_s']:,.0f}",
                     f"{result['elbo']:.2f}", f"{result['rec']:.2f}", f"{result['kl']:.2f}",
                     f"{result['peak_rss_mib']:,.0f}"])
    print(f"{args.steps} steps each, fp32; validation at beta = 1 after the last step")
    print(table(["output head", "output MFLOP/token", "sentences/s", "vs first", "tokens/s", "valid -ELBO",
                 "valid NLL", "valid KL", "peak RSS MiB"], rows))


if __name__ == "__main__":
    main()
