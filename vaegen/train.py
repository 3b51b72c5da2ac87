"""Training, top to bottom: tokenizer, token ids, model, then one loop of steps and per-epoch validation.

Each step: beta from the annealing schedule, a length-grouped batch, word dropout on the decoder
inputs, forward, loss, backward, gradient clipping, Adam. After each epoch the model is scored on
the validation lines at beta = 1; the checkpoint kept is the best by validation -ELBO. Progress goes
to a tqdm bar, and every figure also goes to a JSON-lines log beside the checkpoint.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from vaegen import checkpoint
from vaegen.config import Config
from vaegen.data import collate, epoch_batches, truncate
from vaegen.errors import VaegenError
from vaegen.evaluation import ElboReport, evaluate_elbo
from vaegen.model import SentenceVAE
from vaegen.objectives import kl_weight, vae_loss, word_dropout
from vaegen.tokenizer import UNK_ID, Tokenizer


class TrainingError(VaegenError):
    """Training cannot go on (e.g. the loss stopped being finite)."""


def metrics_path(out: Path) -> Path:
    """The JSON-lines metrics log that sits beside a checkpoint: run.pt -> run.metrics.jsonl."""
    return out.with_name(out.stem + ".metrics.jsonl")


def append_metrics(out: Path, record: dict[str, float | int | str]) -> None:
    with metrics_path(out).open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")


@dataclass
class TrainResult:
    best: ElboReport
    steps: int
    epochs: int
    seconds: float


def fit(config: Config, train_lines: list[str], valid_lines: list[str], out: Path, device: torch.device,
        log: Callable[[str], None] | None = None, progress: bool = True) -> TrainResult:
    """Train on the lines and write the best checkpoint to `out`; notes go to `log` (default: stderr)."""
    log = log or (lambda message: tqdm.write(message, file=sys.stderr))
    tc = config.train
    torch.manual_seed(tc.seed)  # dropout masks
    noise = torch.Generator().manual_seed(tc.seed)  # word dropout and the reparameterisation noise
    started = time.perf_counter()

    tokenizer, choice = Tokenizer.train(train_lines, config.tokenizer)
    log(f"tokenizer: {choice.model_type} model, {choice.vocab_size} pieces, character coverage "
        f"{choice.character_coverage} ({choice.cjk_share:.0%} of characters are CJK)")
    train_ids, train_cut = truncate(tokenizer.encode(train_lines), config.data.max_length)
    valid_ids, valid_cut = truncate(tokenizer.encode(valid_lines), config.data.max_length)
    if train_cut or valid_cut:
        log(f"truncated {train_cut} training and {valid_cut} validation lines to data.max_length = {config.data.max_length} tokens")
    lengths = [len(s) for s in train_ids]

    model = SentenceVAE(config.model, tokenizer.vocab_size).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=tc.lr)
    log(f"model: {sum(p.numel() for p in model.parameters()):,} parameters on {device}")
    metrics_path(out).write_text("", encoding="utf-8")  # a new run starts a new log

    step, epoch, best = 0, 0, None
    while epoch < tc.epochs and not (tc.max_steps and step >= tc.max_steps):
        bar = tqdm(epoch_batches(lengths, tc.batch_size, tc.seed, epoch), desc=f"epoch {epoch + 1}/{tc.epochs}",
                   unit="batch", disable=not progress, dynamic_ncols=True)
        window_tokens, window_start = 0, time.perf_counter()
        for indices in bar:
            beta = kl_weight(step, config.anneal)
            batch = collate([train_ids[i] for i in indices]).to(device)
            inputs = word_dropout(batch.decoder_inputs, tc.word_dropout, UNK_ID, noise)
            eps = torch.randn(len(indices), config.model.latent_dim, generator=noise).to(device)
            output = model(batch.tokens, batch.lengths, inputs, eps)
            terms = vae_loss(output.logits, batch.tokens, output.mu, output.logvar, beta)
            loss = terms.loss.item()
            if not math.isfinite(loss):
                raise TrainingError(f"the loss became {loss} at step {step + 1}; the best checkpoint so far is kept; "
                                    f"lower train.lr or train.grad_clip and train again")
            optimizer.zero_grad(set_to_none=True)
            terms.loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
            optimizer.step()
            step += 1

            window_tokens += int(batch.lengths.sum())
            if step % 10 == 0 or step % tc.log_every == 0:
                record = {"kind": "train", "step": step, "epoch": epoch + 1, "loss": loss, "rec": terms.rec.mean().item(),
                          "kl": terms.kl.mean().item(), "beta": beta,
                          "tokens_per_s": window_tokens / (time.perf_counter() - window_start)}
                bar.set_postfix(loss=f"{loss:.2f}", nll=f"{record['rec']:.2f}", kl=f"{record['kl']:.2f}",
                                beta=f"{beta:.3f}", tok_s=f"{record['tokens_per_s']:.0f}", refresh=False)
                if step % tc.log_every == 0:
                    append_metrics(out, record)
                window_tokens, window_start = 0, time.perf_counter()
            if tc.max_steps and step >= tc.max_steps:
                break
        bar.close()
        epoch += 1

        report = evaluate_elbo(model, valid_ids, tc.batch_size, device)
        improved = best is None or report.elbo < best.elbo
        log(f"epoch {epoch} step {step} valid: NLL {report.rec:.2f}  KL {report.kl:.2f}  -ELBO {report.elbo:.2f} "
            f"nats/sentence, ppl <= {report.ppl:.2f} per token" + ("  (best, saved)" if improved else ""))
        append_metrics(out, {"kind": "valid", "step": step, "epoch": epoch, **report.as_dict()})
        if improved:
            best = report
            train_state = {"step": step, "epoch": epoch, "valid": report.as_dict(),
                           "seconds": time.perf_counter() - started, "optimizer": optimizer.state_dict()}
            checkpoint.save(out, config, tokenizer, model, train_state)
    assert best is not None  # at least one epoch always runs: config validation requires epochs >= 1
    return TrainResult(best, step, epoch, time.perf_counter() - started)
