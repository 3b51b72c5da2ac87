"""Memory over a whole training run: the RSS of a `vaegen train` process sampled until it ends, and whether it stays
flat from its 10th minute on.

    python bench/train_memory.py --out runs/songci-ci-memory/rss.jsonl [--every 20] [--from-minute 10] -- \
        vaegen train data/songci/ci.train.tsv --valid data/songci/ci.valid.tsv --config configs/songci-ci.toml \
        --precision auto --out runs/songci-ci-memory/vae.pt

The command after `--` runs as given (`vaegen` is this interpreter's `python -m vaegen`), its output passed
through. Every --every seconds the process's own RSS (/proc/PID/status) is appended to --out as JSON lines, so
a stopped benchmark keeps what it measured; at the end a table of the samples by minute and the growth between
--from-minute and the end (the goal: within 10%).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from common import ROOT, machine, table


def rss_mib(pid: int) -> float | None:
    """The resident set of process `pid` in MiB, None once it has ended."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return None
    field = next((line for line in status.splitlines() if line.startswith("VmRSS:")), None)
    return int(field.split()[1]) / 1024 if field else None


def sample(command: list[str], out: Path, every: float) -> list[tuple[float, float]]:
    """Run `command`, appending (minutes, RSS MiB) to `out` every `every` seconds until it ends."""
    process = subprocess.Popen(command, cwd=ROOT)
    start, samples = time.perf_counter(), []
    with out.open("a", encoding="utf-8") as log:
        while process.poll() is None:
            time.sleep(every)
            rss = rss_mib(process.pid)
            if rss is not None and process.poll() is None:
                minutes = (time.perf_counter() - start) / 60
                samples.append((minutes, rss))
                log.write(json.dumps({"minutes": round(minutes, 3), "rss_mib": round(rss, 1)}) + "\n")
                log.flush()
    if process.returncode:
        raise SystemExit(f"the training run failed (exit {process.returncode}); samples so far are in {out}")
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="JSON lines of (minutes, RSS MiB), appended")
    parser.add_argument("--every", type=float, default=20.0, help="seconds between samples")
    parser.add_argument("--from-minute", type=float, default=10.0, help="where flatness is judged from")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- vaegen train ...")
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the training command after --")
    if command[0] == "vaegen":
        command = [sys.executable, "-m", "vaegen", *command[1:]]
    print(machine(), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    samples = sample(command, args.out, args.every)
    late = [rss for minutes, rss in samples if minutes >= args.from_minute]
    if not late:
        raise SystemExit(f"the run ended before minute {args.from_minute}: nothing to judge")
    rows = [[f"{minutes:.0f}", f"{rss:,.0f}"] for minutes, rss in samples
            if int(minutes) != int(minutes - args.every / 60) or (minutes, rss) == samples[-1]]
    print(table(["minute", "RSS MiB"], rows))
    print(f"from minute {args.from_minute:g} to the end ({samples[-1][0]:.1f} min): RSS {late[0]:,.0f} -> "
          f"{late[-1]:,.0f} MiB, min {min(late):,.0f}, max {max(late):,.0f}; max over the first "
          f"{max(late) / late[0] - 1:+.1%}")


if __name__ == "__main__":
    main()
