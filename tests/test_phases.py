"""The run's phases as pure functions: what a step does at each point of a run, and schedules that scale with it."""

from __future__ import annotations

import pytest

from vaegen.core.config import AnnealConfig, Config, load_config
from vaegen.core.objectives import kl_weight
from vaegen.train.phases import Moves, Phase, Timeline, aggressive_continues, anneal_for_run, learning_rate, plan_step


def timeline(**train: object) -> Timeline:
    """100 sentences in batches of 10: 10 steps an epoch."""
    overrides = [f"train.{key}={value}" for key, value in {"batch_size": 10, **train}.items()]
    return Timeline.of(load_config(None, overrides + ["anneal.schedule=linear", "anneal.warmup_steps=20"]), 100)


def test_pretraining_holds_beta_at_zero_then_the_schedule_starts_at_its_end() -> None:
    line = timeline(epochs=4, pretrain_epochs=1)
    first, last = plan_step(0, 0, False, line), plan_step(9, 0, False, line)
    assert line.phase(0, False) is Phase.PRETRAINING and first.beta == last.beta == 0.0
    assert first.moves is Moves.ALL and not first.plain
    after = plan_step(10, 1, False, line)
    assert line.phase(1, False) is Phase.VAE and after.beta == 0.0  # kl_weight(0) of the linear schedule
    assert plan_step(20, 2, False, line).beta == pytest.approx(0.5)  # 10 steps into a 20-step warm-up


def test_aggressive_epochs_update_the_encoder_first_then_the_decoder_alone() -> None:
    line = timeline(epochs=4, pretrain_epochs=1, aggressive_epochs=2)
    assert line.phase(0, True) is Phase.PRETRAINING and not plan_step(5, 0, True, line).encoder_first  # never in pretraining
    plan = plan_step(15, 1, True, line)
    assert line.phase(1, True) is Phase.AGGRESSIVE and plan.encoder_first and plan.moves is Moves.DECODER
    assert plan_step(15, 1, False, line).moves is Moves.ALL  # once they have ended


def test_refinement_trains_the_encoder_at_beta_one_on_the_evaluated_objective() -> None:
    line = timeline(epochs=2, refine_epochs=2, lr=1.0, lr_schedule="linear")
    plan = plan_step(20, 2, True, line)
    assert line.phase(2, True) is Phase.REFINEMENT and plan.beta == 1.0 and plan.moves is Moves.ENCODER and plan.plain
    assert plan.lr == 1.0 and plan_step(30, 3, False, line).lr == pytest.approx(0.5)  # its own decay over 20 steps
    assert plan_step(10, 1, False, line).lr == pytest.approx(0.5)  # the main decay spans the 20 main steps


def test_the_run_ends_at_its_epochs_or_max_steps() -> None:
    line = timeline(epochs=2, refine_epochs=1, max_steps=25)
    assert line.epochs == 3 and not line.finished(24, 2) and line.finished(25, 2) and line.finished(3, 3)


def test_aggressive_updates_end_when_mi_stops_rising_or_their_epochs_are_spent() -> None:
    train = Config().train
    train.aggressive_epochs = 3
    assert aggressive_continues(1, 2.0, None, train) and aggressive_continues(2, 2.5, 2.0, train)
    assert not aggressive_continues(2, 2.0, 2.5, train)
    assert not aggressive_continues(3, 9.0, 2.0, train)


def test_learning_rate_decays_to_zero_at_the_last_step() -> None:
    train = Config().train
    train.lr, train.lr_schedule = 2.0, "cosine"
    assert learning_rate(0, 10, train) == 2.0 and learning_rate(10, 10, train) == pytest.approx(0.0)


def test_an_unset_midpoint_scales_with_the_run_and_a_set_one_is_kept() -> None:
    scaled = anneal_for_run(AnnealConfig(), 3_300)  # an 11k-line corpus: 10 epochs of 330 steps
    assert scaled.x0 == 825 and scaled.warmup_steps == 1_650 and scaled.period == 825
    assert kl_weight(3_300, scaled) > 0.99  # the run ends at beta ~ 1, not at 0.7 as with a midpoint of 2,500
    kept = anneal_for_run(AnnealConfig(x0=2500, warmup_steps=7, period=9), 3_300)
    assert (kept.x0, kept.warmup_steps, kept.period) == (2500, 7, 9)


def test_the_timeline_resolves_the_midpoint_after_pretraining_and_within_max_steps() -> None:
    config = load_config(None, ["train.batch_size=10", "train.epochs=10", "train.pretrain_epochs=2"])
    assert Timeline.of(config, 100).anneal.x0 == 20  # a quarter of the 80 steps after pretraining
    config.train.max_steps = 60
    assert Timeline.of(config, 100).anneal.x0 == 10  # a quarter of the 40 annealed steps the run will take
