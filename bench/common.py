"""Helpers shared by the benchmarks: machine description, timing a child process, printing tables."""

from __future__ import annotations

import itertools
import os
import platform
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from vaegen.core.config import Config
from vaegen.core.data import examples_of
from vaegen.core.model import ADAPTIVE_DIV, adaptive_cutoffs
from vaegen.core.tokenizer import EOS_ID, Tokenizer

ROOT = Path(__file__).resolve().parents[1]


def machine() -> str:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    flags = Path("/proc/cpuinfo").read_text()
    extras = [name for name in ("avx512f", "amx_bf16") if name in flags]
    return (f"{model}, {os.cpu_count()} cores ({', '.join(extras)}), torch {torch.__version__}, "
            f"{torch.get_num_threads()} threads, Python {platform.python_version()}")


@dataclass
class ChildRun:
    seconds: float
    peak_rss_mib: float
    returncode: int
    stderr: str


def run_child(args: list[str], cwd: Path | None = None, env: dict[str, str] | None = None,
              stdout: Path | None = None) -> ChildRun:
    """Run a command, returning its wall time and its own peak RSS (from wait4, not the whole tree);
    its standard output goes to the file `stdout` (replaced only when the command succeeds, so a stopped
    run never leaves a truncated result behind), or nowhere."""
    start = time.perf_counter()
    partial = Path(f"{stdout}.partial")
    sink = partial.open("w", encoding="utf-8") if stdout is not None else subprocess.DEVNULL
    process = subprocess.Popen(args, cwd=cwd, env=env, stdout=sink, stderr=subprocess.PIPE, text=True)
    stderr = process.stderr.read() if process.stderr else ""
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if stdout is not None:
        sink.close()  # type: ignore[union-attr]
        if process.returncode == 0:
            partial.replace(stdout)
    return ChildRun(time.perf_counter() - start, usage.ru_maxrss / 1024, process.returncode, stderr)


def table(headers: list[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table, ready to paste into docs/BENCHMARKS.md."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def output_flops(config: Config, counts: torch.Tensor, rank: torch.Tensor | None) -> float:
    """Forward + backward matrix-product FLOPs of the output layer per target token: 2 H V for a full softmax; for
    an adaptive one the head (its tokens and one entry per cluster) plus, for a token of cluster i, that cluster's
    projection to H / 4^(i+1) and its tokens, weighted by the share of targets in each cluster."""
    hidden, vocab = config.model.hidden_dim, len(counts)
    if not config.model.output_head or rank is None:
        return 3.0 * 2 * hidden * vocab
    edges = [*adaptive_cutoffs(config.model.output_head, vocab), vocab]
    per_rank = torch.zeros(vocab, dtype=torch.float64).index_add_(0, rank, counts.double())
    cost = 2.0 * hidden * (edges[0] + len(edges) - 1)
    for i, (start, end) in enumerate(itertools.pairwise(edges)):
        width = int(hidden // ADAPTIVE_DIV ** (i + 1))
        share = float(per_rank[start:end].sum() / per_rank.sum())
        cost += share * (2.0 * hidden * width + 2.0 * width * (end - start))
    return 3.0 * cost


def token_counts(tokenizer: Tokenizer, corpus: Path) -> torch.Tensor:
    """(V,) how often each token is a target in `corpus`: its pieces and one </s> per line."""
    lines = [line.strip() for line in corpus.read_text(encoding="utf-8").splitlines() if line.strip()]
    lines = examples_of(lines, corpus).texts  # the texts of 'tune<TAB>text' lines
    ids = [token for sentence in tokenizer.encode(lines) for token in sentence]
    counts = torch.bincount(torch.tensor(ids, dtype=torch.long), minlength=tokenizer.vocab_size)
    counts[EOS_ID] += len(lines)
    return counts
