"""Peak memory and step time against corpus size: corpora built by repeating data/songci/train.txt.

    python bench/corpus_scaling.py [--lines 100000 1000000 4000000] [--steps 300] [--warmup 100]

Each size is a real `vaegen train` run with configs/songci.toml, stopped after --steps steps, with a
fresh token cache (so tokenization is included) and then once more with the cache filled.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import tempfile
from pathlib import Path

from common import ROOT, machine, run_child, table

SOURCE = ROOT / "data" / "songci" / "train.txt"


def write_corpus(path: Path, lines: int) -> None:
    source = SOURCE.read_text(encoding="utf-8").splitlines()
    with path.open("w", encoding="utf-8") as handle:
        for line in itertools.islice(itertools.cycle(source), lines):
            handle.write(line + "\n")


def train(corpus: Path, out: Path, steps: int, warmup: int, cache: Path) -> tuple[float, float, float]:
    """(wall seconds, peak RSS MiB, steady milliseconds per step) of one run."""
    args = [sys.executable, "-m", "vaegen", "train", str(corpus), "--valid", str(ROOT / "data" / "songci" / "valid.txt"),
            "--config", str(ROOT / "configs" / "songci.toml"), "--out", str(out), "--force", "--no-progress",
            "--max-steps", str(steps), "--set", "train.log_every=10"]
    child = run_child(args, cwd=ROOT, env={**os.environ, "VAEGEN_CACHE_DIR": str(cache)})
    if child.returncode != 0:
        raise SystemExit(f"vaegen train failed:\n{child.stderr}")
    records = [json.loads(line) for line in out.with_name(out.stem + ".metrics.jsonl").read_text().splitlines()]
    steady = [r for r in records if r["kind"] == "train" and r["step"] > warmup]
    return child.seconds, child.peak_rss_mib, sum(r["ms_per_step"] for r in steady) / len(steady)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, nargs="+", default=[100_000, 1_000_000, 4_000_000])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=100)
    args = parser.parse_args()
    print(machine())
    rows = []
    with tempfile.TemporaryDirectory() as directory:
        for lines in args.lines:
            corpus, cache = Path(directory) / f"corpus-{lines}.txt", Path(directory) / f"cache-{lines}"
            write_corpus(corpus, lines)
            for label in ("tokenized", "from cache"):
                seconds, rss, step_ms = train(corpus, Path(directory) / "run.pt", args.steps, args.warmup, cache)
                rows.append([f"{lines:,}", label, f"{seconds:.0f}", f"{rss:,.0f}", f"{step_ms:.1f}"])
            corpus.unlink()
    print(table(["corpus lines", "token ids", f"wall s ({args.steps} steps)", "peak RSS MiB", "ms per step"], rows))


if __name__ == "__main__":
    main()
