"""Wall time until validation -ELBO (beta = 1) first reaches a target on PTB, with KL above a floor.

    python bench/time_to_elbo.py --data ../shared/data/ptb [--target 110] [--min-kl 3] [--minutes 12]
        [--eval-every 200] [--set section.key=value ...]

A real `vaegen train` run validating every --eval-every steps; time counts from the start of the run
(tokenizer and every validation included) and is read from the metrics log.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from common import ROOT, machine, run_child, table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="folder with ptb.train.txt and ptb.valid.txt")
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "ptb-reference.toml")
    parser.add_argument("--target", type=float, default=110.0)
    parser.add_argument("--min-kl", type=float, default=3.0)
    parser.add_argument("--max-steps", type=int, default=4000)
    parser.add_argument("--eval-every", type=int, default=200)
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="config override, repeatable")
    args = parser.parse_args()
    print(machine())
    with tempfile.TemporaryDirectory() as directory:
        out = Path(directory) / "run.pt"
        command = [sys.executable, "-m", "vaegen", "train", str(args.data / "ptb.train.txt"), "--valid",
                   str(args.data / "ptb.valid.txt"), "--config", str(args.config), "--out", str(out), "--no-progress",
                   "--max-steps", str(args.max_steps), "--set", f"train.eval_every={args.eval_every}",
                   "--set", "train.epochs=100"]
        for override in args.overrides:
            command += ["--set", override]
        child = run_child(command, cwd=ROOT)
        if child.returncode != 0:
            raise SystemExit(f"vaegen train failed:\n{child.stderr}")
        records = [json.loads(line) for line in out.with_name("run.metrics.jsonl").read_text().splitlines()]
    valid = [r for r in records if r["kind"] == "valid"]
    rows = [[r["step"], f"{r['seconds'] / 60:.1f}", f"{r['rec']:.2f}", f"{r['kl']:.2f}", f"{r['elbo']:.2f}"]
            for r in valid]
    print(table(["step", "minutes", "valid NLL", "valid KL", "valid -ELBO"], rows))
    reached = next((r for r in valid if r["elbo"] <= args.target and r["kl"] > args.min_kl), None)
    if reached:
        print(f"-ELBO <= {args.target} with KL > {args.min_kl} first at step {reached['step']}, "
              f"after {reached['seconds'] / 60:.1f} minutes")
    else:
        print(f"-ELBO <= {args.target} with KL > {args.min_kl} not reached in {args.max_steps} steps")


if __name__ == "__main__":
    main()
