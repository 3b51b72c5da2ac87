"""Memory of bfloat16 output-layer products over many batch shapes: the fused cross-entropy fed ever new counts of
real tokens, as a long training run feeds it, with its rows padded to a multiple of ROW_QUANTUM or not.

    python bench/bf16_memory.py [--shapes 600] [--quantum 1]
"""

from __future__ import annotations

import argparse

import torch
from common import machine

from vaegen.core import objectives


def rss_mib() -> float:
    return int(open("/proc/self/status").read().split("VmRSS:")[1].split()[0]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", type=int, default=600, help="distinct counts of real tokens, 1,000 upwards")
    parser.add_argument("--quantum", type=int, default=objectives.ROW_QUANTUM, help="1: no padding")
    args = parser.parse_args()
    print(machine())
    objectives.ROW_QUANTUM = args.quantum
    torch.manual_seed(0)
    weight, bias = (torch.randn(6000, 512) / 20).requires_grad_(), torch.zeros(6000, requires_grad=True)
    start = rss_mib()
    for i in range(args.shapes):
        rows = 1000 + 3 * i
        hidden = torch.randn(rows, 512, requires_grad=True)
        nll = objectives.LinearCrossEntropy.apply(hidden, weight, bias, torch.randint(0, 6000, (rows,)),
                                                  torch.bfloat16)
        nll.sum().backward()
        if (i + 1) % (args.shapes // 4) == 0:
            print(f"{i + 1} shapes: RSS {rss_mib():,.0f} MiB (at start {start:,.0f})", flush=True)


if __name__ == "__main__":
    main()
