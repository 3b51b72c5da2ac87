"""The output layer, full softmax against adaptive (model.output_head): training speed and the validation figures
at the same number of steps, on PTB at the reference shape.

    python bench/output_layer.py --data ../shared/data/ptb [--heads 0 1000 2000] [--steps 1000]
        [--config configs/ptb-reference.toml] [--set section.key=value ...]

Each head is a real `vaegen train` process (0: the full softmax) stopped after --steps steps, fp32; throughput is
averaged over the steps after --warmup, the validation figures are those of the end of the run (beta = 1).
MFLOP/token counts the output layer alone, forward and backward, each token paying the head and its own cluster
(`output_flops`), over the training corpus's own token counts.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
from pathlib import Path

import torch
from common import ROOT, machine, run_child, table

from vaegen.core.config import Config
from vaegen.core.model import ADAPTIVE_DIV, adaptive_cutoffs
from vaegen.core.tokenizer import EOS_ID, Tokenizer

LOG_EVERY = 10


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
    ids = [token for sentence in tokenizer.encode(lines) for token in sentence]
    counts = torch.bincount(torch.tensor(ids, dtype=torch.long), minlength=tokenizer.vocab_size)
    counts[EOS_ID] += len(lines)
    return counts


def measure(data: Path, config: Path, overrides: list[str], steps: int, warmup: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as directory:
        out = Path(directory) / "bench.pt"
        args = [sys.executable, "-m", "vaegen", "train", str(data / "ptb.train.txt"), "--valid",
                str(data / "ptb.valid.txt"), "--config", str(config), "--out", str(out), "--no-progress",
                "--max-steps", str(steps), "--set", f"train.log_every={LOG_EVERY}", "--precision", "fp32"]
        for override in overrides:
            args += ["--set", override]
        child = run_child(args, cwd=ROOT)
        if child.returncode != 0:
            raise SystemExit(f"vaegen train failed:\n{child.stderr}")
        records = [json.loads(line) for line in out.with_name("bench.metrics.jsonl").read_text().splitlines()]
        payload = torch.load(out, weights_only=True)
    settings = Config.from_dict(payload["config"])
    counts = token_counts(Tokenizer(bytes(payload["tokenizer"])), data / "ptb.train.txt")
    steady = [r for r in records if r["kind"] == "train" and r["step"] > warmup]
    valid = [r for r in records if r["kind"] == "valid"][-1]
    return {"sentences_per_s": sum(r["sentences_per_s"] for r in steady) / len(steady),
            "tokens_per_s": sum(r["tokens_per_s"] for r in steady) / len(steady), "elbo": valid["elbo"],
            "rec": valid["rec"], "kl": valid["kl"], "peak_rss_mib": child.peak_rss_mib,
            "output_mflops": output_flops(settings, counts, payload["model"].get("output_rank")) / 1e6}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="folder with ptb.train.txt and ptb.valid.txt")
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "ptb-reference.toml")
    parser.add_argument("--heads", type=int, nargs="+", default=[0, 1000, 2000], help="model.output_head; 0: full")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="config override, repeatable")
    args = parser.parse_args()
    args.data = args.data.resolve()  # the runs start in the project root
    print(machine())
    rows, base = [], None
    for head in args.heads:
        result = measure(args.data, args.config, [f"model.output_head={head}", *args.overrides], args.steps,
                         args.warmup)
        base = base or result["sentences_per_s"]
        rows.append([head or "full", f"{result['output_mflops']:.1f}", f"{result['sentences_per_s']:,.1f}",
                     f"{result['sentences_per_s'] / base:.2f}x", f"{result['tokens_per_s']:,.0f}",
                     f"{result['elbo']:.2f}", f"{result['rec']:.2f}", f"{result['kl']:.2f}",
                     f"{result['peak_rss_mib']:,.0f}"])
    print(f"{args.steps} steps each, fp32; validation at beta = 1 after the last step")
    print(table(["output head", "output MFLOP/token", "sentences/s", "vs first", "tokens/s", "valid -ELBO",
                 "valid NLL", "valid KL", "peak RSS MiB"], rows))


if __name__ == "__main__":
    main()
