"""What a training step does at a given point of the run, as pure functions of the run's position.

A run is a sequence of phases, each a span of whole epochs:

    pretraining   epochs [0, pretrain_epochs)            beta = 0, everything moves (Li et al., 2019)
    aggressive    from pretraining's end while on        encoder-only updates first, then the decoder alone
                  (He et al., 2019; it ends when validation MI stops rising or its epochs are spent)
    vae           up to `epochs`                         beta on the annealing schedule, everything moves
    refinement    epochs [epochs, epochs + refine_epochs) beta = 1, the encoder alone, the evaluated
                  objective (no word dropout or free bits), the decoder in eval mode

`plan_step` says, for one step, the phase, beta, the learning rate, which parameters move and which
objective is trained; the training loop only carries it out. `Timeline` holds the run's length in
steps, from which the schedules that scale with the run (an unset annealing midpoint, warm-up or
period) are resolved.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from enum import Enum
from typing import NamedTuple

from vaegen.core.config import AnnealConfig, Config, TrainConfig
from vaegen.core.objectives import kl_weight

ANNEAL_CYCLES = 4  # cyclical annealing without a period: this many cycles over the run (Fu et al., 2019)


class Phase(str, Enum):
    PRETRAINING = "pretraining"
    AGGRESSIVE = "aggressive"
    VAE = "vae"
    REFINEMENT = "refinement"


class Moves(str, Enum):
    """Which parameters the step's update moves."""

    ALL = "all"
    ENCODER = "encoder"
    DECODER = "decoder"


class StepPlan(NamedTuple):
    beta: float  # weight of the KL term
    lr: float
    moves: Moves
    encoder_first: bool  # aggressive: encoder-only updates on fresh batches before this step's update
    plain: bool  # the evaluated objective: no word dropout, no free bits


def learning_rate(step: int, total_steps: int, config: TrainConfig) -> float:
    """The rate for the step after `step`: constant, or decaying to 0 at `total_steps`, which a fixed
    budget rewards (the last steps refine instead of bouncing around the minimum)."""
    done = min(step / max(total_steps, 1), 1.0)
    if config.lr_schedule == "linear":
        return config.lr * (1.0 - done)
    if config.lr_schedule == "cosine":
        return config.lr * 0.5 * (1.0 + math.cos(math.pi * done))
    return config.lr


def anneal_for_run(anneal: AnnealConfig, annealed_steps: int) -> AnnealConfig:
    """The schedule with its unset lengths (0) scaled to the run: the logistic midpoint at
    `midpoint_share` of the annealed steps, the linear warm-up ending at twice that, and cyclical
    annealing in ANNEAL_CYCLES cycles. A fixed default (2,500 steps) served large corpora and left a small
    one near beta = 0 for most of its run."""
    midpoint = max(1, round(anneal.midpoint_share * annealed_steps))
    return dataclasses.replace(anneal, x0=anneal.x0 or midpoint, warmup_steps=anneal.warmup_steps or 2 * midpoint,
                               period=anneal.period or max(1, annealed_steps // ANNEAL_CYCLES))


@dataclass(frozen=True)
class Timeline:
    """The run's length in steps, and its annealing schedule resolved against it."""

    train: TrainConfig
    anneal: AnnealConfig
    steps_per_epoch: int
    pretrain_steps: int  # beta is 0 before, the schedule starts after
    main_steps: int  # pretraining and VAE epochs; any refinement epochs come after these
    lr_steps: int  # what the learning-rate schedule spans
    refine_steps: int

    @classmethod
    def of(cls, config: Config, sentences: int) -> Timeline:
        tc = config.train
        per_epoch = math.ceil(sentences / tc.batch_size)
        pretrain, main = tc.pretrain_epochs * per_epoch, tc.epochs * per_epoch
        lr_steps = min(main, tc.max_steps or main)
        anneal = anneal_for_run(config.anneal, max(1, lr_steps - pretrain))
        return cls(tc, anneal, per_epoch, pretrain, main, lr_steps, tc.refine_epochs * per_epoch)

    @property
    def epochs(self) -> int:
        return self.train.epochs + self.train.refine_epochs

    def finished(self, step: int, epoch: int) -> bool:
        return epoch >= self.epochs or bool(self.train.max_steps and step >= self.train.max_steps)

    def phase(self, epoch: int, aggressive: bool) -> Phase:
        """The phase of an epoch; `aggressive`: aggressive updates have not ended yet."""
        if epoch >= self.train.epochs:
            return Phase.REFINEMENT
        if epoch < self.train.pretrain_epochs:
            return Phase.PRETRAINING
        return Phase.AGGRESSIVE if aggressive else Phase.VAE


def plan_step(step: int, epoch: int, aggressive: bool, timeline: Timeline) -> StepPlan:
    """What the step after `step` (0-based count of steps done) does, in epoch `epoch`."""
    phase = timeline.phase(epoch, aggressive)
    if phase is Phase.REFINEMENT:  # beta = 1, and the schedule's shape again over the refinement's own steps
        rate = learning_rate(step - timeline.main_steps, timeline.refine_steps, timeline.train)
        return StepPlan(1.0, rate, Moves.ENCODER, False, True)
    beta = kl_weight(step - timeline.pretrain_steps, timeline.anneal) if step >= timeline.pretrain_steps else 0.0
    rate = learning_rate(step, timeline.lr_steps, timeline.train)
    if phase is Phase.AGGRESSIVE:
        return StepPlan(beta, rate, Moves.DECODER, True, False)
    return StepPlan(beta, rate, Moves.ALL, False, False)


def aggressive_continues(epoch: int, mi: float, previous_mi: float | None, train: TrainConfig) -> bool:
    """At the end of an aggressive epoch (`epoch` now counts it as done): go on while validation MI still
    rises and the aggressive epochs are not spent."""
    spent = epoch >= train.pretrain_epochs + train.aggressive_epochs
    return not (spent or (previous_mi is not None and mi <= previous_mi))
