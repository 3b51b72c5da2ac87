"""The learning-rate schedule: constant, or decaying to 0 at the last step of the run."""

import itertools
import math

import pytest

from vaegen.core.config import TrainConfig
from vaegen.train.phases import learning_rate


def test_constant_keeps_the_rate() -> None:
    config = TrainConfig(lr=0.002)
    assert [learning_rate(step, 100, config) for step in (0, 50, 100)] == [0.002] * 3


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_decay_starts_at_the_rate_falls_monotonically_and_ends_at_zero(schedule: str) -> None:
    config = TrainConfig(lr=0.002, lr_schedule=schedule)
    rates = [learning_rate(step, 100, config) for step in range(121)]
    assert rates[0] == pytest.approx(0.002)
    assert all(a >= b for a, b in itertools.pairwise(rates))
    assert rates[100] == pytest.approx(0.0, abs=1e-12) and rates[120] == pytest.approx(0.0, abs=1e-12)


def test_linear_and_cosine_meet_at_half_way() -> None:
    linear = learning_rate(50, 100, TrainConfig(lr=1.0, lr_schedule="linear"))
    cosine = learning_rate(50, 100, TrainConfig(lr=1.0, lr_schedule="cosine"))
    assert linear == pytest.approx(0.5) and cosine == pytest.approx(0.5)
    assert learning_rate(25, 100, TrainConfig(lr=1.0, lr_schedule="cosine")) == pytest.approx(
        0.5 * (1 + math.cos(math.pi / 4)))
