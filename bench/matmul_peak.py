"""Measured matrix-product peak of this machine in float32 and bfloat16: the roofline for training.

    python bench/matmul_peak.py [--repeats 20]

Two shapes: large square products (the machine's best case) and the output layer of a PTB batch
(736 tokens x 256 hidden x 10,002 words), the product that dominates training.
"""

from __future__ import annotations

import argparse
import time

import torch
from common import machine, table

SHAPES = {"2048 x 2048 x 2048": (2048, 2048, 2048), "736 x 256 x 10002 (PTB output layer)": (736, 256, 10002)}


def gflops(dtype: torch.dtype, m: int, k: int, n: int, repeats: int) -> float:
    """GFLOP/s of (m, k) @ (k, n) products."""
    a = torch.randn(m, k).to(dtype)
    b = torch.randn(k, n).to(dtype)
    for _ in range(3):
        a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * m * k * n * repeats / (time.perf_counter() - start) / 1e9


def peaks(repeats: int = 20) -> dict[str, dict[str, float]]:
    """{shape: {"fp32": GFLOP/s, "bf16": GFLOP/s}}"""
    return {name: {"fp32": gflops(torch.float32, *shape, repeats), "bf16": gflops(torch.bfloat16, *shape, repeats)}
            for name, shape in SHAPES.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    print(machine())
    rows = [[name, f"{value['fp32']:.0f}", f"{value['bf16']:.0f}"] for name, value in peaks(args.repeats).items()]
    print(table(["product (m x k x n)", "fp32 GFLOP/s", "bf16 GFLOP/s"], rows))


if __name__ == "__main__":
    main()
