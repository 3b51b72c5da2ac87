"""Start-up costs a user feels: `vaegen --help`, and `vaegen sample --n 10` from a cold process.

    python bench/cold_start.py --checkpoint runs/songci/vaegen.pt [--repeats 5]

The reference for sampling is what any torch program pays before it can generate: starting Python,
importing torch and loading the checkpoint file. Each figure is the median of --repeats runs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

from common import machine, run_child, table


def median_seconds(args: list[str], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        child = run_child(args)
        if child.returncode != 0:
            raise SystemExit(f"{' '.join(args)} failed:\n{child.stderr}")
        times.append(child.seconds)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(machine())
    python, vaegen = sys.executable, [sys.executable, "-m", "vaegen"]
    figures = {
        "vaegen --help": median_seconds([*vaegen, "--help"], args.repeats),
        "python -c 'import torch'": median_seconds([python, "-c", "import torch"], args.repeats),
        "import torch + torch.load(checkpoint)": median_seconds(
            [python, "-c", f"import torch; torch.load({str(args.checkpoint)!r}, weights_only=True)"], args.repeats),
        "vaegen sample --n 10": median_seconds([*vaegen, "sample", "--n", "10", "--seed", "1", "--checkpoint",
                                                str(args.checkpoint)], args.repeats),
    }
    reference = figures["import torch + torch.load(checkpoint)"]
    rows = [[name, f"{seconds:.2f}", f"{seconds / reference:.2f}x"] for name, seconds in figures.items()]
    print(table(["command", "seconds (median)", "of import torch + load"], rows))


if __name__ == "__main__":
    main()
