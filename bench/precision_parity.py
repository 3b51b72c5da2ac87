"""bf16 against fp32: validation figures (always computed in fp32) after the same training, and the time it took.

    python bench/precision_parity.py --data ../shared/data/ptb [--epochs 1] [--set section.key=value ...]

Both runs use the same seed, data order and config; only train.precision differs.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch
from common import ROOT, machine, run_child, table


def train_once(data: Path, config: Path, precision: str, epochs: int, overrides: list[str]) -> list[str]:
    with tempfile.TemporaryDirectory() as directory:
        out = Path(directory) / f"{precision}.pt"
        args = [sys.executable, "-m", "vaegen", "train", str(data / "ptb.train.txt"), "--valid",
                str(data / "ptb.valid.txt"), "--config", str(config), "--out", str(out), "--no-progress",
                "--epochs", str(epochs), "--precision", precision]
        for override in overrides:
            args += ["--set", override]
        child = run_child(args, cwd=ROOT)
        if child.returncode != 0:
            raise SystemExit(f"vaegen train failed:\n{child.stderr}")
        valid = torch.load(out, weights_only=True)["train_state"]["valid"]
    return [precision, f"{valid['rec']:.2f}", f"{valid['kl']:.2f}", f"{valid['elbo']:.2f}", f"{child.seconds / 60:.1f}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="folder with ptb.train.txt and ptb.valid.txt")
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "ptb-reference.toml")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="config override, repeatable")
    args = parser.parse_args()
    print(machine())
    rows = [train_once(args.data, args.config, precision, args.epochs, args.overrides) for precision in ("fp32", "bf16")]
    print(table(["precision", "valid NLL", "valid KL", "valid -ELBO", "minutes (incl. tokenizer, validation)"], rows))
    print(f"NLL difference bf16 - fp32: {float(rows[1][1]) - float(rows[0][1]):+.2f} nats/sentence")


if __name__ == "__main__":
    main()
