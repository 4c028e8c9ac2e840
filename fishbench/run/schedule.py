"""The learning-rate schedule: one array with the rate of every training step, for both backends."""

from __future__ import annotations

import math

import numpy as np

from fishbench.config import RunConfig


def _cosine(progress: np.ndarray, lr_init: float, eta_min: float) -> np.ndarray:
    return eta_min + (lr_init - eta_min) * (1.0 + np.cos(math.pi * progress)) / 2.0


def lr_per_step(cfg: RunConfig, steps_per_epoch: int) -> np.ndarray:
    """Return the learning rate of each of the ``cfg.epochs * steps_per_epoch`` steps (float64).

    - ``cosine_annealing`` (MindSpore model zoo): ``eta_min + (lr_init - eta_min) *
      (1 + cos(pi * epoch / T_max)) / 2`` with ``epoch = floor(step / steps_per_epoch)``; it bottoms
      at ``T_max`` and rises after it.
    - ``cosine``: the same curve evaluated per step over the steps after the warm-up.
    - ``step``: ``lr_init * gamma ** floor(epoch / step_epochs)``.

    Every schedule starts with ``warmup_epochs`` of linear warm-up from ``lr_init / warmup_steps``
    to ``lr_init`` (the model zoo's ``linear_warmup_lr`` with ``warmup_init_lr = 0``).
    """
    total = cfg.epochs * steps_per_epoch
    step = np.arange(total, dtype=np.float64)
    epoch = np.floor(step / steps_per_epoch)
    warmup_steps = cfg.warmup_epochs * steps_per_epoch
    name = cfg.schedule.name
    if name == "cosine_annealing":
        lr = _cosine(epoch / cfg.T_max, cfg.lr_init, cfg.eta_min)
    elif name == "cosine":
        decay_steps = max(total - warmup_steps, 1)
        lr = _cosine((step - warmup_steps) / decay_steps, cfg.lr_init, cfg.eta_min)
    elif name == "step":
        lr = cfg.lr_init * cfg.schedule.gamma ** np.floor(epoch / cfg.schedule.step_epochs)
    else:
        raise ValueError(f"unknown schedule {name!r}")
    if warmup_steps:
        warm = step < warmup_steps
        lr[warm] = cfg.lr_init * (step[warm] + 1) / warmup_steps
    return lr
