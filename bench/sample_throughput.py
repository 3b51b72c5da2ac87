"""Sampling throughput: `vaegen sample --n N` for N up to 10,000 in one command, wall time and peak RSS.

    python bench/sample_throughput.py --checkpoint runs/bench-ptb/vae.pt [--n 10 1000 10000] [--greedy]

Each row is one real `vaegen sample` process writing its sentences to a file; sentences/s is taken
over the generation alone: the smallest run (start-up, imports, loading the checkpoint, a few
sentences) is subtracted from each larger one.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from common import machine, run_child, table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--n", type=int, nargs="+", default=[10, 1000, 10000])
    parser.add_argument("--greedy", action="store_true", help="greedy decoding instead of sampling")
    args = parser.parse_args()
    print(machine())
    rows: list[list[object]] = []
    baseline: tuple[int, float] | None = None
    with tempfile.TemporaryDirectory() as directory:
        for n in sorted(args.n):
            out = Path(directory) / f"{n}.txt"
            command = [sys.executable, "-m", "vaegen", "sample", "--n", str(n), "--seed", "1",
                       "--checkpoint", str(args.checkpoint)] + (["--greedy"] if args.greedy else [])
            child = run_child(command, stdout=out)
            if child.returncode != 0:
                raise SystemExit(f"vaegen sample failed:\n{child.stderr}")
            printed = len(out.read_text(encoding="utf-8").splitlines())
            if printed != n:
                raise SystemExit(f"asked for {n} sentences, got {printed}")
            baseline = baseline or (n, child.seconds)
            extra, seconds = n - baseline[0], child.seconds - baseline[1]
            rate = f"{extra / seconds:,.0f}" if extra and seconds > 0 else "—"
            rows.append([f"{n:,}", f"{child.seconds:.2f}", rate, f"{child.peak_rss_mib:,.0f}"])
    print(f"{args.checkpoint}, {'greedy' if args.greedy else 'sampling at temperature 1'}")
    print(table(["sentences", "wall s", "sentences/s (generation alone)", "peak RSS MiB"], rows))


if __name__ == "__main__":
    main()
