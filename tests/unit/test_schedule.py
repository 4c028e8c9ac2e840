"""The shared LR schedule against the reference formulas at chosen steps, and its state."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest

from fishbench.config import RunConfig, ScheduleConfig
from fishbench.errors import CheckpointError
from fishbench.run.schedule import LRSchedule


def lr_per_step(cfg: RunConfig, steps_per_epoch: int) -> np.ndarray:
    """The learning rate of every step of ``cfg``'s schedule."""
    schedule = LRSchedule(cfg, steps_per_epoch)
    return np.array([schedule.lr(step) for step in range(len(schedule))])


def model_zoo_lr(step: int, steps_per_epoch: int, lr_init: float, eta_min: float, t_max: int) -> float:
    """The FishNet99 recipe's formula, written out as in ../shared/docs/recipes.md."""
    epoch = step // steps_per_epoch
    return eta_min + (lr_init - eta_min) * (1 + math.cos(math.pi * epoch / t_max)) / 2


def test_cosine_annealing_is_the_model_zoo_formula() -> None:
    cfg = RunConfig(lr_init=0.05, eta_min=0.001, T_max=150, epochs=160, warmup_epochs=0)
    schedule = LRSchedule(cfg, steps_per_epoch=10009)
    assert len(schedule) == 160 * 10009
    for step in (0, 10008, 10009, 75 * 10009 + 5, 150 * 10009, 159 * 10009 + 10008):
        assert schedule.lr(step) == pytest.approx(model_zoo_lr(step, 10009, 0.05, 0.001, 150),
                                                  rel=1e-12)
    assert schedule.lr(0) == 0.05
    assert schedule.lr(150 * 10009) == pytest.approx(0.001)  # bottoms at T_max ...
    assert schedule.lr(159 * 10009) > schedule.lr(150 * 10009)  # ... and rises after it


def test_cosine_annealing_is_constant_within_an_epoch() -> None:
    lrs = lr_per_step(RunConfig(lr_init=0.1, T_max=4, epochs=4, warmup_epochs=0), 7)
    assert set(lrs[7:14]) == {lrs[7]} and lrs[6] > lrs[7]


def test_linear_warmup_then_schedule() -> None:
    cfg = RunConfig(lr_init=0.4, T_max=10, epochs=10, warmup_epochs=2)
    lrs = lr_per_step(cfg, 5)
    assert lrs[:10].tolist() == pytest.approx([0.4 * (i + 1) / 10 for i in range(10)])
    assert lrs[10] == pytest.approx(model_zoo_lr(10, 5, 0.4, 0.0, 10))


def test_per_step_cosine_runs_from_lr_init_to_eta_min_after_warmup() -> None:
    cfg = RunConfig(lr_init=0.2, eta_min=0.0, epochs=90, warmup_epochs=5,
                    schedule=ScheduleConfig(name="cosine"))
    spe = 100
    lrs = lr_per_step(cfg, spe)
    assert lrs[499] == pytest.approx(0.2)  # end of warm-up
    assert lrs[500] == pytest.approx(0.2)
    mid = 500 + (9000 - 500) // 2
    assert lrs[mid] == pytest.approx(0.1, rel=1e-9)
    assert lrs[-1] == pytest.approx(0.2 * (1 + math.cos(math.pi * 8499 / 8500)) / 2)
    assert all(a >= b for a, b in zip(lrs[500:], lrs[501:]))


def test_step_decays_tenfold_every_30_epochs() -> None:
    cfg = RunConfig(lr_init=0.1, epochs=90, warmup_epochs=0, schedule=ScheduleConfig(name="step"))
    lrs = lr_per_step(cfg, 3)
    assert (lrs[0], lrs[89], lrs[90], lrs[180], lrs[-1]) == pytest.approx((0.1, 0.1, 0.01, 0.001, 0.001))


def test_the_state_is_the_settings_and_a_resume_continues_them(
        caplog: pytest.LogCaptureFixture) -> None:
    cfg = RunConfig(lr_init=0.1, T_max=4, epochs=4, warmup_epochs=1)
    state = LRSchedule(cfg, 5).state_dict()
    assert state == {"name": "cosine_annealing", "lr_init": 0.1, "eta_min": 0.0, "T_max": 4,
                     "warmup_epochs": 1, "step_epochs": 30, "gamma": 0.1, "epochs": 4,
                     "steps_per_epoch": 5}
    longer = LRSchedule(RunConfig(lr_init=0.1, T_max=4, epochs=6, warmup_epochs=1), 5)
    with caplog.at_level(logging.WARNING, logger="fishbench"):
        longer.load_state_dict(state)  # more epochs: the same rates, then more of them
    assert caplog.records == []
    assert [longer.lr(s) for s in range(20)] == lr_per_step(cfg, 5).tolist()


def test_a_resume_with_another_lr_init_says_so_and_uses_it(
        caplog: pytest.LogCaptureFixture) -> None:
    """What the message of a diverged run advises: lower lr_init, then resume."""
    state = LRSchedule(RunConfig(lr_init=0.1, T_max=4, epochs=4), 5).state_dict()
    lower = LRSchedule(RunConfig(lr_init=0.01, T_max=4, epochs=4), 5)
    with caplog.at_level(logging.WARNING, logger="fishbench"):
        lower.load_state_dict(state)
    assert "lr_init=0.01 (the checkpoint's run had 0.1)" in caplog.text
    assert lower.lr(0) == 0.01


def test_a_resume_with_another_kind_of_schedule_is_refused() -> None:
    state = LRSchedule(RunConfig(epochs=4), 5).state_dict()
    per_step = LRSchedule(RunConfig(epochs=4, schedule=ScheduleConfig(name="cosine")), 5)
    with pytest.raises(CheckpointError, match="trained with schedule=cosine_annealing, this run "
                                              "has schedule=cosine.*pass schedule=cosine_annealing"):
        per_step.load_state_dict(state)
