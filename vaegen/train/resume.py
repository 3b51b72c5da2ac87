"""Continuing a saved run: which config keys a resumed run may change, and whether a config given again
is the run's own.

A resumed run must stay the same run (the same model, data, objective and optimizer), or its weights and
optimizer state would no longer mean what they meant; only the keys in `RESUMABLE_KEYS` (how long to
train, how often to log, validate and save) may change. The command that started a run, plus --resume,
names its preset again: that is accepted when the preset, with its overrides, agrees with the run on
every other key, and refused with the keys that differ when it does not.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vaegen.core import checkpoint
from vaegen.core.config import Config, apply_overrides, load_config
from vaegen.core.errors import TrainingError
from vaegen.core.model import output_head_for
from vaegen.core.tokenizer import Tokenizer

RESUMABLE_KEYS = {"train.epochs", "train.max_steps", "train.log_every", "train.eval_every", "train.checkpoint_every",
                  "train.checkpoint_minutes", "train.max_nonfinite_skips", "train.refine_epochs"}


def differences(run: Config, requested: Config) -> list[str]:
    """'section.key: A in the run, B in --config' for every key outside RESUMABLE_KEYS where they differ."""
    theirs = requested.to_dict()
    return [f"{section}.{key}: {value} in the run, {theirs[section][key]} in --config"
            for section, entries in run.to_dict().items() for key, value in entries.items()
            if f"{section}.{key}" not in RESUMABLE_KEYS and theirs[section][key] != value]


def load_resumable(out: Path, overrides: list[str], preset: Path | None = None) -> tuple[Config, dict[str, Any]]:
    """The run saved at `out` and the config to continue it with: without `preset`, the run's own with
    `overrides` of RESUMABLE_KEYS alone (e.g. more epochs); with it, the preset and `overrides`, provided
    they agree with the run's own config outside RESUMABLE_KEYS."""
    if not out.exists():
        raise TrainingError(f"nothing to resume: {out} does not exist; start a new run without --resume")
    payload = checkpoint.read(out)
    state = payload.get("train_state") or {}
    if "resume" not in state:
        raise TrainingError(f"{out} holds no training state to resume; start a new run with --force or another --out")
    saved = checkpoint.saved_config(payload, out)
    if preset is None:
        config = apply_overrides(saved, overrides, RESUMABLE_KEYS)
    else:
        config = load_config(preset, overrides)
        vocab_size = Tokenizer(bytes(payload["tokenizer"])).vocab_size  # the preset's default head, as the run chose it
        config.model.output_head = output_head_for(config.model, vocab_size)
        if conflicts := differences(saved, config):
            raise TrainingError(f"--config {preset} does not match the run in {out}: {'; '.join(conflicts)}; "
                                f"resume without --config to continue the run as it was")
    epochs = config.train.epochs + config.train.refine_epochs
    if state["epoch"] >= epochs or (config.train.max_steps and state["step"] >= config.train.max_steps):
        raise TrainingError(f"the run in {out} is complete ({state['epoch']} epochs, {state['step']} steps); "
                            f"raise --epochs, --max-steps or train.refine_epochs to train further")
    return config, payload
