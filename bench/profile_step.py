"""Where a training step's time goes, per op: the training loop's own step (`batch_terms` and `update`, so labels,
form inputs and bf16 autocast as `vaegen train` runs them) on a real corpus and preset, 20 warm-up steps, then
100 under torch.profiler.

    python bench/profile_step.py --data ../shared/data/ptb [--head 1000] [--rows 22]
    python bench/profile_step.py --train data/songci/ci.train.tsv --config configs/songci-ci.toml --precision auto
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from common import ROOT, machine
from torch.profiler import ProfilerActivity, profile

from vaegen.core.config import load_config
from vaegen.core.data import epoch_batches, read_examples
from vaegen.core.devices import resolve_precision
from vaegen.train.loop import batch_terms, build_run, update
from vaegen.train.phases import Timeline, plan_step
from vaegen.train.run_state import RunState

WARMUP, PROFILED = 20, 100


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="folder with ptb.train.txt (or give --train)")
    parser.add_argument("--train", type=Path, help="a training corpus")
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "ptb-reference.toml")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "auto"])
    parser.add_argument("--head", type=int, default=-1, help="model.output_head; 0: full softmax, -1: the default")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="config override, repeatable")
    parser.add_argument("--rows", type=int, default=22)
    args = parser.parse_args()
    if args.train is None and args.data is None:
        parser.error("give --data or --train")
    train = args.train or args.data / "ptb.train.txt"
    print(machine())
    config = load_config(args.config, [f"model.output_head={args.head}", f"train.precision={args.precision}",
                                       *args.overrides])
    examples = read_examples(train, config.model.label_dim > 0)
    cpu = torch.device("cpu")
    low = resolve_precision(config.train.precision, cpu) == "bf16"
    state = RunState.fresh(config, 0, "", "")
    with tempfile.TemporaryDirectory() as directory:
        run = build_run(config, Path(directory) / "profile.pt", cpu, lambda _: None, low_precision=low, resume=None,
                        train_lines=examples.texts, valid_lines=examples.texts[:10], train_labels=examples.labels,
                        valid_labels=examples.labels[:10] if examples.labels else None)
    timeline = Timeline.of(run.config, len(run.train_ids))
    batches = epoch_batches(run.train_ids.lengths, config.train.batch_size, config.train.seed, 0)

    def step(indices: list[int]) -> None:
        plan = plan_step(state.step, 0, False, timeline)
        update(run, batch_terms(run, state, indices, plan).loss, plan.lr, plan.moves)
        state.step += 1

    for indices in batches[:WARMUP]:
        step(indices)
    started = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU]) as profiler:
        for indices in batches[WARMUP : WARMUP + PROFILED]:
            step(indices)
    print(f"{train.name}, output head {run.config.model.output_head or 'full'}, {'bf16' if low else 'fp32'}: "
          f"{(time.perf_counter() - started) / PROFILED * 1000:.1f} ms a step under the profiler")
    print(profiler.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows, max_name_column_width=40))


if __name__ == "__main__":
    main()
