"""Where a training run stands, as one value that is saved in the checkpoint and restored whole.

`RunState` holds the position (step, epoch, batches of the epoch done), the best validation report
and its weights, the phase flags of aggressive updates, the counters (skipped batches, seconds), the
fingerprints of the training and validation lines, and the random streams (torch's global one, used
by dropout, and the generator of word dropout and the reparameterisation noise). `train_state` writes
it, with the latest weights and Adam's moments, in the checkpoint's `train_state` layout
(docs/checkpoint.md); `restore` reads it back so that a resumed run takes exactly the steps the
uninterrupted one would have taken.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from typing import Any

import torch

from vaegen.core.config import Config
from vaegen.core.errors import TrainingError
from vaegen.train.validation import ElboReport

Weights = dict[str, torch.Tensor]


def fingerprint(lines: list[str], labels: list[str] | None = None) -> str:
    """Identifies lines (and their labels), so that a resumed run refuses a corpus that changed."""
    text = "\n".join(lines) if labels is None else "\n".join(f"{label}\t{line}" for label, line in zip(labels, lines))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def aggressive_at_start(config: Config) -> bool:
    return config.train.aggressive_epochs > 0 and config.model.latent_dim > 0


@dataclass
class RunState:
    corpus: str  # fingerprint of the training lines
    valid_corpus: str  # fingerprint of the validation lines: best -ELBO compares only on the same set
    noise: torch.Generator  # word dropout, fresh aggressive batches and the reparameterisation noise
    step: int = 0
    epoch: int = 0
    position: int = 0  # batches of the current epoch already done
    skipped: int = 0  # batches with a non-finite loss
    seconds: float = 0.0  # training time of earlier processes of this run
    aggressive: bool = False  # aggressive encoder updates still on (they end at an epoch's end)
    previous_mi: float | None = None  # validation MI at the end of the last aggressive epoch
    best: ElboReport | None = None
    best_weights: Weights | None = None
    validated_step: int = -1  # the step of the last validation in this process: never twice at one step
    last_save: float = field(default_factory=time.monotonic)  # for train.checkpoint_minutes
    started: float = field(default_factory=time.perf_counter)

    @classmethod
    def fresh(cls, config: Config, rank: int, corpus: str, valid_corpus: str) -> RunState:
        """Step 0, with the random streams seeded per rank (dropout masks differ across ranks). Seeds torch's
        global stream, so it comes before the model is built: the initial weights are drawn from it."""
        torch.manual_seed(config.train.seed + rank)
        noise = torch.Generator().manual_seed(config.train.seed + rank)
        return cls(corpus, valid_corpus, noise, aggressive=aggressive_at_start(config))

    @classmethod
    def restore(cls, payload: dict[str, Any], config: Config, rank: int, corpus: str, valid_corpus: str,
                model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> RunState:
        """The state saved in a checkpoint payload, with the model and optimizer loaded in place."""
        saved = payload["train_state"]
        if saved["corpus"] != corpus:
            raise TrainingError("the training lines differ from those the run was trained on; resume with the "
                                "same corpus, or start a new run with --force")
        if saved.get("valid_corpus", valid_corpus) != valid_corpus:
            raise TrainingError("the validation lines differ from those the run was validated on, so its best "
                                "-ELBO would be compared across sets; resume with the same --valid (or none)")
        model.load_state_dict(saved["resume"]["model"])
        optimizer.load_state_dict(saved["resume"]["optimizer"])
        torch.set_rng_state(saved["resume"]["rng"])
        noise = torch.Generator()
        noise.set_state(saved["resume"]["noise"])
        state = cls(corpus, valid_corpus, noise, step=saved["step"], epoch=saved["epoch"], position=saved["position"],
                    skipped=saved["skipped"], seconds=saved["seconds"],
                    aggressive=saved.get("aggressive", aggressive_at_start(config)), previous_mi=saved.get("previous_mi"))
        if saved["valid"] is not None:
            state.best, state.best_weights = ElboReport(**saved["valid"]), payload["model"]
        if rank:  # the checkpoint holds rank 0's random streams; the others restart theirs from the step
            torch.manual_seed(config.train.seed + rank + state.step)
            noise.manual_seed(config.train.seed + rank + state.step)
        state.started = time.perf_counter() - state.seconds
        return state

    @property
    def elapsed(self) -> float:
        """Seconds of training of the whole run, earlier processes included."""
        return time.perf_counter() - self.started

    def keep_if_best(self, report: ElboReport, model: torch.nn.Module) -> bool:
        """Keep a copy of the weights when `report` is the best -ELBO so far; says whether it was."""
        if self.best is not None and report.elbo >= self.best.elbo:
            return False
        self.best = report
        self.best_weights = {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}
        return True

    def weights_to_keep(self, model: torch.nn.Module) -> Weights:
        """What generation will use: the best weights, or the latest before any validation."""
        return self.best_weights if self.best_weights is not None else model.state_dict()

    def train_state(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
        """The checkpoint's `train_state`: this state plus the latest weights and Adam's moments."""
        return {
            "step": self.step, "epoch": self.epoch, "position": self.position, "skipped": self.skipped,
            "corpus": self.corpus, "valid_corpus": self.valid_corpus, "seconds": self.elapsed,
            "valid": self.best.as_dict() if self.best else None,
            "aggressive": self.aggressive, "previous_mi": self.previous_mi,
            "resume": {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                       "rng": torch.get_rng_state(), "noise": self.noise.get_state()},
        }
