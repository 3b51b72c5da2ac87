"""Train a VAE and its language-model baseline (the same decoder, latent_dim = 0) with one preset, score
both on a test split with `vaegen eval`, and print the table; `ptb.py` and `songci_lines.py` use it.

Each model is a real `vaegen train` run (validation file given) followed by a real `vaegen eval --json`.
Checkpoints stay in --out, so a finished model is reused when the script runs again (delete it to retrain),
and an unfinished one (the script was stopped) is resumed where it stopped. So is a model's score, when it
is newer than the checkpoint and has the same K and --eval-precision (delete `NAME.eval.json` to score again).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
from common import ROOT, machine, run_child, table

LM_OVERRIDES = ["model.latent_dim=0", "train.word_dropout=0.0"]  # word dropout only serves the latent code


@dataclass
class Corpus:
    train: Path
    valid: Path
    test: Path


def arguments(description: str, default_config: Path, default_out: Path) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--config", type=Path, default=default_config)
    parser.add_argument("--out", type=Path, default=default_out, help="folder for the checkpoints and eval results")
    parser.add_argument("--iw-samples", type=int, default=500)
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        help="config override for both models, repeatable")
    parser.add_argument("--eval-precision", default="fp32", choices=["fp32", "bf16"])
    return parser


def vae_and_lm_arguments(description: str, default_config: Path, default_out: Path) -> argparse.ArgumentParser:
    parser = arguments(description, default_config, default_out)
    parser.add_argument("--models", nargs="+", default=["vae", "lm"], choices=["vae", "lm"])
    return parser


def unfinished(model: Path) -> bool:
    """Whether the run saved at `model` stopped before its last epoch (or step)."""
    payload = torch.load(model, weights_only=True)
    state, train = payload["train_state"], payload["config"]["train"]
    return state["epoch"] < train["epochs"] and not (train["max_steps"] and state["step"] >= train["max_steps"])


def scored(result: Path, model: Path, iw_samples: int, precision: str) -> bool:
    """Whether `result` holds a score of the checkpoint now at `model` in `precision`, with K = `iw_samples` for
    a VAE (a score written before eval reported its precision is taken as not matching)."""
    if not result.exists() or result.stat().st_mtime < model.stat().st_mtime:
        return False
    report = json.loads(result.read_text(encoding="utf-8"))
    return report.get("precision") == precision and report["iw_samples"] == (iw_samples if report["latent_dim"] else 1)


def train_and_evaluate(name: str, corpus: Corpus, args: argparse.Namespace, overrides: list[str]) -> dict[str, float]:
    """Train with `overrides` on top of --config (unless a finished checkpoint is there; an unfinished one is
    resumed) and evaluate one model; returns eval's figures plus timings."""
    args.out.mkdir(parents=True, exist_ok=True)
    model = args.out / f"{name}.pt"
    fresh = not model.exists()
    resume = not fresh and unfinished(model)
    if fresh or resume:
        command = [sys.executable, "-m", "vaegen", "train", str(corpus.train), "--valid", str(corpus.valid),
                   "--out", str(model), "--no-progress"]
        if resume:
            command += ["--resume"]
        else:
            command += ["--config", str(args.config)] + [item for override in overrides for item in ("--set", override)]
        print(f"training {name}: {' '.join(command[2:])}", flush=True)
        child = run_child(command, cwd=ROOT)
        if child.returncode != 0:
            raise SystemExit(f"vaegen train failed:\n{child.stderr}")
    result = args.out / f"{name}.eval.json"
    command = [sys.executable, "-m", "vaegen", "eval", str(corpus.test), "-c", str(model), "--json",
               "--iw-samples", str(args.iw_samples), "--train", str(corpus.train), "--precision", args.eval_precision,
               "--no-progress"]
    if scored(result, model, args.iw_samples, args.eval_precision):
        print(f"reusing the score of {name} in {result}", flush=True)
    else:
        print(f"evaluating {name}: {' '.join(command[2:])}", flush=True)
        child = run_child(command, cwd=ROOT, stdout=result)
        if child.returncode != 0:
            raise SystemExit(f"vaegen eval failed:\n{child.stderr}")
    report = json.loads(result.read_text(encoding="utf-8"))
    state = torch.load(model, weights_only=True)["train_state"]
    report["train_minutes"] = state["seconds"] / 60
    report["epochs"] = state["epoch"]
    return report


def report_table(results: dict[str, dict[str, float]], unit: str) -> str:
    rows = [[name.upper(), f"{r['nll']:.2f}", f"{r['ppl']:.2f}", f"{r['elbo']:.2f}", f"{r['rec']:.2f}",
             f"{r['kl']:.2f}", f"{r['mi']:.2f}", f"{r['au']}/{r['latent_dim']}", f"{r['bleu']:.2f}",
             f"{r['distinct_1']:.3f}/{r['distinct_2']:.3f}", f"{r['self_bleu']:.2f}",
             f"{100 * r['copy_rate']:.1f}%", f"{r['epochs']}", f"{r['train_minutes']:.1f}", f"{r['seconds'] / 60:.1f}"]
            for name, r in results.items()]
    return table(["model", f"IW-NLL (K={next(iter(results.values()))['iw_samples']})", f"PPL per {unit}",
                  "-ELBO", "rec", "KL", "MI", "AU", "BLEU", "distinct-1/2", "self-BLEU", "copies", "epochs",
                  "train min", "eval min"], rows)


def main(corpus: Corpus, args: argparse.Namespace, unit: str) -> None:
    print(machine(), flush=True)
    results = {name: train_and_evaluate(name, corpus, args, args.overrides + (LM_OVERRIDES if name == "lm" else []))
               for name in args.models}
    sentences = next(iter(results.values()))
    print(f"{corpus.test}: {sentences['sentences']:,} sentences, {sentences['units']:,} {unit}s with end of sentence")
    print(report_table(results, unit))
