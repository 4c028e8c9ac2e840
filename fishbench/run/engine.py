"""The training loop every backend shares: epochs, evaluation, history, best, checkpoints.

A backend provides a :class:`Trainer` (the framework-specific steps); this module decides what
happens when, logs progress, detects a diverged loss and writes the run's files.
"""

from __future__ import annotations

import gc
import logging
import math
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, closing, contextmanager
from typing import Any

from fishbench.backends.base import Trainer
from fishbench.config import RunConfig
from fishbench.errors import DataError, TrainingDiverged
from fishbench.run.checkpoints import CheckpointPolicy, Progress, checkpoint_meta
from fishbench.run.live import STEP_LINE, LiveDisplay, console_above_bars, display_wanted
from fishbench.run.metrics import StepTimer
from fishbench.run.records import RunRecorder
from fishbench.run.schedule import LRSchedule

log = logging.getLogger("fishbench")


class StepLogger:
    """Called after every step; at log points it syncs, checks the loss and prints a line. With
    a ``display`` (a terminal, rank 0), it also moves the live bars (:mod:`fishbench.run.live`).

    Inside a ``with`` block, after the first step, it collects and freezes the heap
    (``gc.freeze``): the model, optimizer, loaders and torch.compile's graphs, over a million
    objects on CUDA, are then left out of the collector's scans. A full collection (Python starts
    one whenever the survivors since the last one reach a quarter of the heap) had scanned them in
    pauses of training of seconds. When the block ends, however
    it ends, it thaws the heap (``gc.unfreeze``, which also thaws what the caller froze before),
    so that what the run left in reference cycles is reclaimed, e.g. before a multirun's next job
    in this process."""

    def __init__(self, cfg: RunConfig, recorder: RunRecorder | None, global_batch: int,
                 steps_per_epoch: int, progress: Progress,
                 display: LiveDisplay | None = None) -> None:
        self.progress = progress
        self.display = display
        self.every = cfg.log_every_n_steps
        self.epochs = cfg.epochs
        self.recorder = recorder
        self.global_batch = global_batch
        self.steps_per_epoch = steps_per_epoch
        self.timer = StepTimer(warmup_steps=min(5, steps_per_epoch))
        self._since_lap = 0
        self._heap_frozen: bool | None = None  # None outside a with block: never frozen
        self._display_stack = ExitStack()

    def __enter__(self) -> "StepLogger":
        self._heap_frozen = False
        if self.display is not None:
            self._display_stack.enter_context(console_above_bars())
            self._display_stack.enter_context(self.display)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._heap_frozen:
            gc.unfreeze()
        self._heap_frozen = None
        self._display_stack.close()

    def start_epoch(self, epoch: int) -> None:
        """Epoch ``epoch`` (0-based) starts."""
        self._since_lap = 0
        self.timer.restart()
        if self.display is not None:
            self.display.start_epoch(epoch)

    @contextmanager
    def validation(self) -> Iterator[Callable[[], None] | None]:
        """Around a validation: yields what the trainer calls after each batch (None without a
        display)."""
        if self.display is None:
            yield None
            return
        with self.display.validation() as on_batch:
            yield on_batch

    def due(self, step_in_epoch: int) -> bool:
        """Whether step ``step_in_epoch`` (0-based) is a log point: every N, and the last."""
        n = step_in_epoch + 1
        return n % self.every == 0 or n == self.steps_per_epoch

    def step(self, epoch: int, step_in_epoch: int, global_step: int, lr: float,
             loss: Any) -> None:
        """``loss`` is a device scalar; it is read (a sync) only at log points."""
        self._since_lap += 1
        if self._heap_frozen is False:
            gc.collect()
            gc.freeze()
            self._heap_frozen = True
        if not self.due(step_in_epoch):
            if self.display is not None:
                self.display.step(lr)
            return
        value = float(loss)
        check_finite(value, epoch, global_step, self.progress.saved_epoch)
        ms = self.timer.lap(self._since_lap)
        self._since_lap = 0
        img_per_s = 1000.0 * self.global_batch / ms
        log.info("epoch %d/%d step %d/%d  loss %.4f  lr %.5f  %.1f img/s", epoch + 1, self.epochs,
                 step_in_epoch + 1, self.steps_per_epoch, value, lr, img_per_s,
                 extra={STEP_LINE: True})
        if self.display is not None:
            self.display.step(lr, value, img_per_s)
        if self.recorder is not None:
            self.recorder.log_step(global_step, value, lr, img_per_s)


def check_finite(loss: float, epoch: int, global_step: int, saved_epoch: int | None) -> None:
    """Stop the run when the training loss of ``epoch`` (0-based) is NaN or infinite."""
    if not math.isfinite(loss):
        raise diverged(f"The training loss became {loss}", epoch, global_step, saved_epoch)


def diverged(what: str, epoch: int, global_step: int, saved_epoch: int | None) -> TrainingDiverged:
    """The error for a run that diverged in ``epoch`` (0-based), saying which checkpoint exists."""
    fix = "Lower lr_init, add warmup_epochs, or set amp=false"
    if saved_epoch is None:
        kept = (f"No checkpoint of this run exists (none is saved before the end of an epoch). "
                f"{fix}, then start the run again.")
    else:
        kept = (f"Its last good checkpoint, checkpoints/last of epoch {saved_epoch} (every "
                f"parameter and buffer finite), was kept. {fix}, then continue from it with "
                "resume=true or start again.")
    return TrainingDiverged(f"{what} at epoch {epoch + 1}, step {global_step}; the run stopped. "
                            f"{kept}")


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
    schedule = LRSchedule(cfg, steps)
    if progress.schedule is not None:
        schedule.load_state_dict(progress.schedule)
    global_batch = cfg.batch_size * trainer.world_size
    if recorder is not None:
        recorder.continue_from(progress.elapsed_s)
    top1 = top5 = loss = float("nan")
    display = (LiveDisplay(cfg.epochs, steps, trainer.val_steps)
               if display_wanted(cfg.progress, trainer.rank) else None)
    with StepLogger(cfg, recorder, global_batch, steps, progress, display) as logger, \
            closing(trainer):
        for epoch in range(progress.epoch, cfg.epochs):
            started = time.perf_counter()
            logger.start_epoch(epoch)
            loss = trainer.train_epoch(epoch, schedule, progress.global_step, logger)
            check_finite(loss, epoch, progress.global_step + steps, progress.saved_epoch)
            if not trainer.weights_finite():
                raise diverged("A parameter or buffer of the model (e.g. a BatchNorm running "
                               "variance) became NaN or infinite", epoch,
                               progress.global_step + steps, progress.saved_epoch)
            train_time = time.perf_counter() - started
            progress.global_step += steps
            with logger.validation() as on_batch:
                top1, top5 = trainer.evaluate(on_batch).percent()[:2]
            progress.epoch = epoch + 1
            is_best = top1 > progress.best_top1 or progress.best_epoch == 0
            if is_best:
                progress.best_top1, progress.best_epoch = top1, progress.epoch
            row = {"epoch": progress.epoch, "lr": schedule.lr(progress.global_step - 1),
                   "train_loss": loss, "top1": top1, "top5": top5,
                   "epoch_time_s": time.perf_counter() - started,
                   "img_per_s": global_batch * steps / train_time}
            log.info("epoch %d/%d done: loss %.4f  top1 %.2f  top5 %.2f  (best %.2f @ %d)  %.1fs",
                     progress.epoch, cfg.epochs, loss, top1, top5, progress.best_top1,
                     progress.best_epoch, row["epoch_time_s"])
            rng_states = trainer.rank_rng_states()
            if recorder is not None:  # the history gets an epoch once its checkpoint exists
                meta = checkpoint_meta(trainer, progress, recorder.elapsed_s(), schedule)
                policy.save(progress.epoch, progress.epoch == cfg.epochs, is_best,
                            lambda tmp: trainer.save_checkpoint(tmp, meta, rng_states))
                recorder.log_epoch(row)
            progress.saved_epoch = progress.epoch
    ms = logger.timer.median_ms()
    return {"top1": top1, "top5": top5, "loss": loss, "epochs": progress.epoch,
            "steps": progress.global_step, "ms_per_step": ms,
            "img_per_s": 1000.0 * global_batch / ms if ms == ms else float("nan"),
            "img_per_s_per_device": 1000.0 * cfg.batch_size / ms if ms == ms else float("nan")}
