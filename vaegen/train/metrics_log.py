"""The metrics log of a run: one JSON record per line beside its checkpoint (run.pt -> run.metrics.jsonl),
and the throughput window that its training records report.

Training appends a "train" record every `train.log_every` steps and a "valid" record at every
validation. A resumed run first rewinds the log to the step it resumes from, so the steps it redoes
are logged once; the rewind is atomic, and a line torn by a killed process is dropped, not fatal.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vaegen.core.files import write_atomically


def metrics_path(out: Path) -> Path:
    """The JSON-lines metrics log that sits beside a checkpoint: run.pt -> run.metrics.jsonl."""
    return out.with_name(out.stem + ".metrics.jsonl")


def start(out: Path) -> None:
    """A new run starts a new, empty log."""
    write_atomically(metrics_path(out), lambda handle: None)


def append(out: Path, record: dict[str, Any]) -> None:
    with metrics_path(out).open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")


def read(path: Path) -> list[dict[str, Any]]:
    """The whole records of a log; a line torn by a killed process (the last one) is skipped."""
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and isinstance(record.get("step"), int):
            records.append(record)
    return records


def rewind(out: Path, step: int) -> None:
    """Drop records past `step` (a resumed run redoes those steps and logs them again), atomically."""
    path = metrics_path(out)
    if path.exists():
        kept = "".join(json.dumps(record) + "\n" for record in read(path) if record["step"] <= step)
        write_atomically(path, lambda handle: handle.write(kept.encode("utf-8")))


@dataclass
class Throughput:
    """Speed over the steps since the last report: tokens (</s> included) and sentences of the global
    batch per second, milliseconds per step, and encoder-only updates per step of aggressive training."""

    steps: int = 0
    tokens: int = 0
    sentences: int = 0
    encoder_steps: int = 0
    start: float = field(default_factory=time.perf_counter)

    def add(self, tokens: int, sentences: int, encoder_steps: int = 0) -> None:
        self.steps += 1
        self.tokens += tokens
        self.sentences += sentences
        self.encoder_steps += encoder_steps

    def report(self, aggressive: bool) -> dict[str, float]:
        """The window's rates (the caller then starts a new window)."""
        elapsed = time.perf_counter() - self.start
        rates = {"tokens_per_s": self.tokens / elapsed, "sentences_per_s": self.sentences / elapsed,
                 "ms_per_step": 1000 * elapsed / self.steps}
        if aggressive:
            rates["encoder_steps"] = self.encoder_steps / self.steps
        return rates
