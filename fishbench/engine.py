"""The training loop every backend shares: epochs, evaluation, history, best, checkpoints.

A backend provides a :class:`Trainer` (the framework-specific steps); this module decides what
happens when, logs progress, detects a diverged loss and writes the run's files.
"""

from __future__ import annotations

import logging
import math
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fishbench.checkpoint import CheckpointPolicy
from fishbench.config import RunConfig
from fishbench.data.spec import DataSpec
from fishbench.errors import CheckpointError, DataError, TrainingDiverged
from fishbench.metrics import Accuracy, StepTimer
from fishbench.results import RunRecorder
from fishbench.schedule import lr_per_step

log = logging.getLogger("fishbench")


@dataclass
class Progress:
    """Where training stands; saved in every checkpoint and restored by ``resume=true``."""

    epoch: int = 0  # epochs completed
    global_step: int = 0
    best_top1: float = 0.0
    best_epoch: int = 0


class Trainer(ABC):
    """The framework-specific part of a run. ``rank``/``world_size`` describe data parallelism."""

    checkpoint_suffix: str = ".ckpt"

    def __init__(self, cfg: RunConfig, spec: DataSpec, rank: int = 0, world_size: int = 1) -> None:
        self.cfg = cfg
        self.spec = spec
        self.rank = rank
        self.world_size = world_size

    @property
    @abstractmethod
    def steps_per_epoch(self) -> int:
        """Training steps per epoch on each rank."""

    @abstractmethod
    def train_epoch(self, epoch: int, lrs: np.ndarray, first_step: int, logger: "StepLogger") -> float:
        """Train one epoch with ``lrs[first_step + i]`` at step ``i``; return the mean loss over
        all ranks. Call ``logger.step(...)`` after every step (it decides when to sync)."""

    @abstractmethod
    def evaluate(self) -> Accuracy:
        """Top-k counts over the whole validation split (summed over ranks)."""

    @abstractmethod
    def save_checkpoint(self, path: Path, meta: dict[str, Any]) -> None:
        """Write weights, optimizer/scaler/RNG state and ``meta`` to ``path``."""

    @abstractmethod
    def load_checkpoint(self, path: Path, full: bool) -> dict[str, Any]:
        """Load weights (and, with ``full``, the training state); return the saved ``meta``."""

    @abstractmethod
    def versions(self) -> dict[str, str]:
        """Framework versions for ``metrics.json``."""


class StepLogger:
    """Called after every step; at log points it syncs, checks the loss and prints a line."""

    def __init__(self, cfg: RunConfig, recorder: RunRecorder | None, global_batch: int,
                 steps_per_epoch: int) -> None:
        self.every = cfg.log_every_n_steps
        self.epochs = cfg.epochs
        self.recorder = recorder
        self.global_batch = global_batch
        self.steps_per_epoch = steps_per_epoch
        self.timer = StepTimer(warmup_steps=min(5, steps_per_epoch))
        self._since_lap = 0

    def start_epoch(self) -> None:
        self._since_lap = 0
        self.timer.restart()

    def due(self, step_in_epoch: int) -> bool:
        """Whether step ``step_in_epoch`` (0-based) is a log point: every N, and the last."""
        n = step_in_epoch + 1
        return n % self.every == 0 or n == self.steps_per_epoch

    def step(self, epoch: int, step_in_epoch: int, global_step: int, lr: float,
             loss: Any) -> None:
        """``loss`` is a device scalar; it is read (a sync) only at log points."""
        self._since_lap += 1
        if not self.due(step_in_epoch):
            return
        value = float(loss)
        check_finite(value, epoch, global_step)
        ms = self.timer.lap(self._since_lap)
        self._since_lap = 0
        img_per_s = 1000.0 * self.global_batch / ms
        log.info("epoch %d/%d step %d/%d  loss %.4f  lr %.5f  %.1f img/s", epoch + 1, self.epochs,
                 step_in_epoch + 1, self.steps_per_epoch, value, lr, img_per_s)
        if self.recorder is not None:
            self.recorder.log_step(global_step, value, lr, img_per_s)


def check_finite(loss: float, epoch: int, global_step: int) -> None:
    if not math.isfinite(loss):
        raise TrainingDiverged(
            f"The training loss became {loss} at epoch {epoch + 1}, step {global_step}. The run "
            "stopped and its last good checkpoint (checkpoints/last) was kept. Lower lr_init, add "
            "warmup_epochs, or set amp=false, then start again or resume=true."
        )


def fit(trainer: Trainer, recorder: RunRecorder | None, policy: CheckpointPolicy,
        progress: Progress) -> dict[str, Any]:
    """Train from ``progress`` to ``cfg.epochs``; return the numbers for ``metrics.json``."""
    cfg = trainer.cfg
    steps = trainer.steps_per_epoch
    if steps == 0:
        raise DataError(
            f"The train split has {trainer.spec.train_size} images: not one full batch of "
            f"batch_size={cfg.batch_size} per process for {trainer.world_size} process(es). "
            "Lower batch_size or use more data."
        )
    lrs = lr_per_step(cfg, steps)
    global_batch = cfg.batch_size * trainer.world_size
    logger = StepLogger(cfg, recorder, global_batch, steps)
    top1 = top5 = loss = float("nan")
    for epoch in range(progress.epoch, cfg.epochs):
        started = time.perf_counter()
        logger.start_epoch()
        loss = trainer.train_epoch(epoch, lrs, progress.global_step, logger)
        check_finite(loss, epoch, progress.global_step + steps)
        train_time = time.perf_counter() - started
        progress.global_step += steps
        top1, top5 = trainer.evaluate().percent()[:2]
        progress.epoch = epoch + 1
        is_best = top1 > progress.best_top1 or progress.best_epoch == 0
        if is_best:
            progress.best_top1, progress.best_epoch = top1, progress.epoch
        row = {"epoch": progress.epoch, "lr": float(lrs[progress.global_step - 1]),
               "train_loss": loss, "top1": top1, "top5": top5,
               "epoch_time_s": time.perf_counter() - started,
               "img_per_s": global_batch * steps / train_time}
        log.info("epoch %d/%d done: loss %.4f  top1 %.2f  top5 %.2f  (best %.2f @ %d)  %.1fs",
                 progress.epoch, cfg.epochs, loss, top1, top5, progress.best_top1,
                 progress.best_epoch, row["epoch_time_s"])
        if recorder is not None:
            recorder.log_epoch(row)
            meta = checkpoint_meta(cfg, progress)
            policy.save(progress.epoch, progress.epoch == cfg.epochs, is_best,
                        lambda tmp: trainer.save_checkpoint(tmp, meta))
    ms = logger.timer.median_ms()
    return {"top1": top1, "top5": top5, "loss": loss, "epochs": progress.epoch,
            "steps": progress.global_step, "ms_per_step": ms,
            "img_per_s": 1000.0 * global_batch / ms if ms == ms else float("nan"),
            "img_per_s_per_device": 1000.0 * cfg.batch_size / ms if ms == ms else float("nan")}


def checkpoint_meta(cfg: RunConfig, progress: Progress) -> dict[str, Any]:
    return {"model": cfg.model.name, "num_classes": cfg.model.num_classes,
            "backend": cfg.backend.name, "epoch": progress.epoch,
            "global_step": progress.global_step, "best_top1": progress.best_top1,
            "best_epoch": progress.best_epoch}


def check_meta(meta: dict[str, Any], cfg: RunConfig, path: Path) -> None:
    """Stop with a clear message when a checkpoint belongs to another model or class count."""
    model, classes = meta.get("model"), meta.get("num_classes")
    if model is not None and model != cfg.model.name:
        raise CheckpointError(
            f"ckpt_path '{path}' holds a {model} checkpoint, but model={cfg.model.name}. "
            f"Run with model={model} or pass a {cfg.model.name} checkpoint."
        )
    if classes is not None and classes != cfg.model.num_classes:
        raise CheckpointError(
            f"ckpt_path '{path}' was trained for {classes} classes, but the run has "
            f"{cfg.model.num_classes}. Use a dataset with {classes} classes or another checkpoint."
        )
