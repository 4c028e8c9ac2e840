"""The learning-rate schedule: one object that the engine builds and both backends read per step."""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np

from fishbench.config import RunConfig
from fishbench.errors import CheckpointError

log = logging.getLogger("fishbench")


def _cosine(progress: np.ndarray, lr_init: float, eta_min: float) -> np.ndarray:
    return eta_min + (lr_init - eta_min) * (1.0 + np.cos(math.pi * progress)) / 2.0


class LRSchedule:
    """The learning rate of each of the ``epochs * steps_per_epoch`` training steps (float64).

    - ``cosine_annealing`` (MindSpore model zoo): ``eta_min + (lr_init - eta_min) *
      (1 + cos(pi * epoch / T_max)) / 2`` with ``epoch = floor(step / steps_per_epoch)``; it bottoms
      at ``T_max`` and rises after it.
    - ``cosine``: the same curve evaluated per step over the steps after the warm-up.
    - ``step``: ``lr_init * gamma ** floor(epoch / step_epochs)``.

    Every schedule starts with ``warmup_epochs`` of linear warm-up from ``lr_init / warmup_steps``
    to ``lr_init`` (the model zoo's ``linear_warmup_lr`` with ``warmup_init_lr = 0``).

    The rate of a step depends only on the settings and the step, so the settings are the whole
    state: :meth:`state_dict` goes into every checkpoint and :meth:`load_state_dict` checks a
    resumed run against it.
    """

    def __init__(self, cfg: RunConfig, steps_per_epoch: int) -> None:
        self.settings: dict[str, Any] = {
            "name": cfg.schedule.name, "lr_init": cfg.lr_init, "eta_min": cfg.eta_min,
            "T_max": cfg.T_max, "warmup_epochs": cfg.warmup_epochs,
            "step_epochs": cfg.schedule.step_epochs, "gamma": cfg.schedule.gamma,
            "epochs": cfg.epochs, "steps_per_epoch": steps_per_epoch}
        self._rates = self._rates_per_step()

    def _rates_per_step(self) -> np.ndarray:
        s = self.settings
        steps_per_epoch = s["steps_per_epoch"]
        total = s["epochs"] * steps_per_epoch
        step = np.arange(total, dtype=np.float64)
        epoch = np.floor(step / steps_per_epoch)
        warmup_steps = s["warmup_epochs"] * steps_per_epoch
        if s["name"] == "cosine_annealing":
            lr = _cosine(epoch / s["T_max"], s["lr_init"], s["eta_min"])
        elif s["name"] == "cosine":
            decay_steps = max(total - warmup_steps, 1)
            lr = _cosine((step - warmup_steps) / decay_steps, s["lr_init"], s["eta_min"])
        elif s["name"] == "step":
            lr = s["lr_init"] * s["gamma"] ** np.floor(epoch / s["step_epochs"])
        else:
            raise ValueError(f"unknown schedule {s['name']!r}")
        if warmup_steps:
            warm = step < warmup_steps
            lr[warm] = s["lr_init"] * (step[warm] + 1) / warmup_steps
        return lr

    def __len__(self) -> int:
        return len(self._rates)

    def lr(self, step: int) -> float:
        """The learning rate of global step ``step`` (0-based)."""
        return float(self._rates[step])

    def state_dict(self) -> dict[str, Any]:
        """The settings the schedule was built with (plain values, for a checkpoint)."""
        return dict(self.settings)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue the schedule of a checkpoint: another kind of schedule is refused; another
        value of a setting (e.g. a lower ``lr_init`` after a diverged run) is logged and used
        from the resumed step on. ``epochs`` may grow, to train further (logged only for
        ``cosine``, whose curve spans all epochs)."""
        if state["name"] != self.settings["name"]:
            raise CheckpointError(
                f"The checkpoint to resume was trained with schedule={state['name']}, this run "
                f"has schedule={self.settings['name']}. resume=true continues the learning-rate "
                f"schedule of the run: pass schedule={state['name']}, or start a new run from "
                "its weights with ckpt_path=<the checkpoint> resume=false."
            )
        length_only = () if state["name"] == "cosine" else ("epochs",)
        changed = [f"{key}={self.settings[key]} (the checkpoint's run had {value})"
                   for key, value in state.items()
                   if key not in length_only and value != self.settings[key]]
        if changed:
            log.warning("resuming with %s: the learning rate follows this run's settings",
                        ", ".join(changed))
