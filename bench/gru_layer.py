"""One GRU in training, forward and backward: torch's nn.GRU against the layer with its backward written out
(`vaegen.core.recurrence`), for the encoder's reading to each sentence's end and the decoder's reading of whole
rows, in fp32 and bf16.

    python bench/gru_layer.py [--repeats 10]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch
from common import machine, table
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from vaegen.core.recurrence import GRULayer, gru

BATCH, HIDDEN = 32, 256


def timed(step: Callable[[], None], repeats: int) -> float:
    """Milliseconds per call after three warm-up calls."""
    for _ in range(3):
        step()
    start = time.perf_counter()
    for _ in range(repeats):
        step()
    return (time.perf_counter() - start) / repeats * 1000


def encoder(low: bool, repeats: int) -> tuple[float, float]:
    """A bidirectional GRU over 100 steps, each sentence read to its own end (80 to 100 tokens)."""
    module = nn.GRU(HIDDEN, HIDDEN, batch_first=True, bidirectional=True)
    x = torch.randn(BATCH, 100, HIDDEN, requires_grad=True)
    lengths = torch.randint(80, 101, (BATCH,), generator=torch.Generator().manual_seed(0))
    lengths[0] = 100

    def theirs() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=low):
            _, final = module(pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False))
        final.float().sum().backward()

    def mine() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=low):
            _, final = gru(module, x, lengths=lengths)
        final.float().sum().backward()

    return timed(theirs, repeats), timed(mine, repeats)


def decoder(low: bool, repeats: int) -> tuple[float, float]:
    """A GRU over 80 steps of 384 inputs, every row read whole; in fp32 `gru` is nn.GRU itself (see its docstring),
    so the written-out layer is called directly there."""
    module = nn.GRU(384, HIDDEN, batch_first=True)
    x = torch.randn(BATCH, 80, 384, requires_grad=True)
    h0 = torch.zeros(BATCH, HIDDEN)
    params = [module.get_parameter(name) for name in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")]

    def theirs() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=low):
            out, _ = module(x)
        out.float().sum().backward()

    def mine() -> None:
        out, _ = GRULayer.apply(x, h0, *params, None, False, torch.bfloat16 if low else torch.float32)
        out.sum().backward()

    return timed(theirs, repeats), timed(mine, repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    print(machine())
    torch.manual_seed(0)
    rows = []
    for name, reading in (("encoder, to each sentence's end (packed in torch)", encoder), ("decoder, whole rows", decoder)):
        for low in (False, True):
            theirs, mine = reading(low, args.repeats)
            rows.append([name, "bf16" if low else "fp32", f"{theirs:.1f} ms", f"{mine:.1f} ms"])
    print(table(["reading", "precision", "nn.GRU", "written out"], rows))


if __name__ == "__main__":
    main()
