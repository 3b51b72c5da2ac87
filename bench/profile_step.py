"""Where a training step's time goes, per op, at the PTB reference shape: 20 warm-up steps, then 100 under
torch.profiler, on the first 20,000 lines of PTB, with the output layer given by --head (0: full softmax).

    python bench/profile_step.py --data ../shared/data/ptb [--head 1000] [--rows 22]
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

import torch
from common import ROOT, machine
from torch.profiler import ProfilerActivity, profile

from vaegen.core.config import load_config
from vaegen.core.data import collate
from vaegen.core.model import SentenceVAE
from vaegen.core.objectives import vae_loss, word_dropout
from vaegen.core.tokenizer import EOS_ID, UNK_ID, Tokenizer

LINES, BATCH, WARMUP, PROFILED = 20_000, 32, 20, 100


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="folder with ptb.train.txt")
    parser.add_argument("--head", type=int, default=1000, help="model.output_head; 0: full softmax")
    parser.add_argument("--rows", type=int, default=22)
    args = parser.parse_args()
    print(machine())
    config = load_config(ROOT / "configs" / "ptb-reference.toml", [f"model.output_head={args.head}"])
    text = (args.data / "ptb.train.txt").read_text(encoding="utf-8").splitlines()
    lines = [line.strip() for line in text if line.strip()][:LINES]
    tokenizer, _ = Tokenizer.train(lines, config.tokenizer)
    ids = tokenizer.encode(lines)
    torch.manual_seed(0)
    model = SentenceVAE(config.model, tokenizer.vocab_size)
    model.rank_outputs(torch.bincount(torch.tensor([t for s in ids for t in [*s, EOS_ID]]),
                                      minlength=tokenizer.vocab_size))
    optimizer = torch.optim.Adam(model.parameters(), lr=config.train.lr, fused=True)
    noise = torch.Generator().manual_seed(0)
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))  # length-grouped batches, as training makes them
    batches = [order[i : i + BATCH] for i in range(0, len(order), BATCH)]
    random.Random(0).shuffle(batches)

    def step(indices: list[int]) -> None:
        batch = collate([ids[i] for i in indices])
        inputs = word_dropout(batch.decoder_inputs, config.train.word_dropout, UNK_ID, noise)
        eps = torch.randn(len(indices), config.model.latent_dim, generator=noise)
        out = model(batch.tokens, batch.lengths, inputs, eps)
        terms = vae_loss(model.token_nll(out.hidden, batch.tokens), out.mu, out.logvar, 0.5, 0.0, False)
        optimizer.zero_grad(set_to_none=True)
        terms.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.train.grad_clip)
        optimizer.step()

    for indices in batches[:WARMUP]:
        step(indices)
    started = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU]) as profiler:
        for indices in batches[WARMUP : WARMUP + PROFILED]:
            step(indices)
    print(f"output head {args.head or 'full'}: {(time.perf_counter() - started) / PROFILED * 1000:.1f} ms a step "
          "under the profiler")
    print(profiler.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows, max_name_column_width=40))


if __name__ == "__main__":
    main()
