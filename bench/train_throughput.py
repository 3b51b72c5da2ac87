"""Training throughput on PTB in steady state: tokens/s, sentences/s, peak RSS and share of the roofline.

    python bench/train_throughput.py --data ../shared/data/ptb [--config configs/ptb-reference.toml]
        [--precision fp32 bf16] [--steps 400] [--warmup 100] [--set section.key=value ...]

Each run is a real `vaegen train` process (tokenizer, data, model, optimizer: everything the user
runs) stopped after --steps steps; throughput is averaged over the steps after --warmup, from the
per-window figures the training loop logs. Peak RSS is that process's own.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import torch
from common import ROOT, machine, output_flops, run_child, table, token_counts
from matmul_peak import peaks

from vaegen.core.config import Config
from vaegen.core.tokenizer import Tokenizer

LOG_EVERY = 10


def train_flops_per_token(config: Config, output: float) -> float:
    """Matrix-product FLOPs per token for forward + backward (3x forward), given the output layer's
    (`output_layer.output_flops`); per-sentence layers are left out."""
    m = config.model
    gates = 3 * m.hidden_dim  # a GRU layer computes 3 gates from its input and from its state
    directions = 2 if m.bidirectional else 1
    encoder = directions * sum(2 * gates * ((m.embed_dim if layer == 0 else directions * m.hidden_dim) + m.hidden_dim)
                               for layer in range(m.encoder_layers))
    first_input = m.embed_dim + (m.latent_dim if m.z_every_step else 0)
    decoder = sum(2 * gates * ((first_input if layer == 0 else m.hidden_dim) + m.hidden_dim)
                  for layer in range(m.decoder_layers))
    return 3.0 * (encoder + decoder) + output


def measure(train: Path, valid: Path, config: Path, overrides: list[str], steps: int, warmup: int) -> dict[str, float]:
    """One `vaegen train` run of `steps` steps on the corpus `train` ('tune<TAB>text' lines too), validated on
    `valid` after its last step: steady-state throughput, peak RSS, FLOPs and the validation figures."""
    with tempfile.TemporaryDirectory() as directory:
        out = Path(directory) / "bench.pt"
        args = [sys.executable, "-m", "vaegen", "train", str(train), "--valid", str(valid), "--config", str(config),
                "--out", str(out), "--no-progress", "--max-steps", str(steps), "--set", f"train.log_every={LOG_EVERY}"]
        for override in overrides:
            args += ["--set", override]
        child = run_child(args, cwd=ROOT)
        if child.returncode != 0:
            raise SystemExit(f"vaegen train failed:\n{child.stderr}")
        records = [json.loads(line) for line in out.with_name("bench.metrics.jsonl").read_text().splitlines()]
        steady = [r for r in records if r["kind"] == "train" and r["step"] > warmup]
        payload = torch.load(out, weights_only=True)
        settings = Config.from_dict(payload["config"])
        counts = token_counts(Tokenizer(bytes(payload["tokenizer"])), train)
        output = output_flops(settings, counts, payload["model"].get("output_rank"))
    last = [r for r in records if r["kind"] == "valid"][-1]  # the validation after the last step
    return {"tokens_per_s": sum(r["tokens_per_s"] for r in steady) / len(steady),
            "sentences_per_s": sum(r["sentences_per_s"] for r in steady) / len(steady),
            "peak_rss_mib": child.peak_rss_mib, "flops_per_token": train_flops_per_token(settings, output),
            "output_flops": output, "head": settings.model.output_head, "batch_size": settings.train.batch_size,
            "elbo": last["elbo"], "rec": last["rec"], "kl": last["kl"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="folder with ptb.train.txt and ptb.valid.txt")
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "ptb-reference.toml")
    parser.add_argument("--precision", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"])
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="config override, repeatable")
    args = parser.parse_args()
    print(machine())
    roof = peaks()["2048 x 2048 x 2048"]
    rows = []
    for precision in args.precision:
        result = measure(args.data / "ptb.train.txt", args.data / "ptb.valid.txt", args.config,
                         [f"train.precision={precision}", *args.overrides], args.steps, args.warmup)
        achieved = result["tokens_per_s"] * result["flops_per_token"] / 1e9
        rows.append([precision, result["batch_size"], f"{result['tokens_per_s']:,.0f}",
                     f"{result['sentences_per_s']:,.1f}", f"{result['peak_rss_mib']:,.0f}",
                     f"{result['flops_per_token'] / 1e6:.1f}", f"{achieved:.0f}",
                     f"{100 * achieved / roof['fp32']:.0f}%", f"{100 * achieved / roof['bf16']:.0f}%"])
    print(f"matrix-product peak measured now: fp32 {roof['fp32']:.0f} GFLOP/s, bf16 {roof['bf16']:.0f} GFLOP/s")
    print(table(["precision", "batch", "tokens/s", "sentences/s", "peak RSS MiB", "MFLOP/token", "GFLOP/s",
                 "of fp32 peak", "of bf16 peak"], rows))


if __name__ == "__main__":
    main()
