"""The live progress display of a training run on a terminal (tqdm): a bar per epoch with the
step, loss, learning rate, img/s and the time left of the epoch and of the run, and a bar over
the validation batches.

The config key ``progress`` chooses: ``auto`` shows it when both stdout (the log lines) and
stderr (the bar) are terminals, ``true`` always, ``false`` never; only rank 0 shows it. While it
shows, log lines that go to a terminal print above the bar, and the per-step lines, which the
bar replaces, go to the log files only. Output that is not a terminal (a file, a pipe, CI, the
run's log file) keeps every log line as it is without the display.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from tqdm import tqdm

STEP_LINE = "fishbench_step_line"  # set on a per-step log record (``extra=``): the bar shows it
BAR_FORMAT = "{desc}: {n_fmt}/{total_fmt} {unit} |{bar}| {elapsed}<{remaining}{postfix}"


def display_wanted(setting: bool | str, rank: int) -> bool:
    """Whether this process shows the display: ``progress`` is ``true``, or ``auto`` and both
    stdout and stderr are terminals; never on ranks other than 0."""
    if rank != 0 or setting is False:
        return False
    return setting is True or (sys.stdout.isatty() and sys.stderr.isatty())


class _AboveTheBars(logging.Handler):
    """Stands in for a console handler while bars show: its records print above the bars, the
    per-step lines are left out."""

    def __init__(self, console: logging.StreamHandler) -> None:
        super().__init__(console.level)
        self.console = console

    def handle(self, record: logging.LogRecord) -> bool:
        if getattr(record, STEP_LINE, False):
            return False
        with tqdm.external_write_mode(file=self.console.stream):
            return bool(self.console.handle(record))


def _on_terminal(handler: logging.Handler) -> bool:
    stream = getattr(handler, "stream", None)
    return (isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler)
            and callable(getattr(stream, "isatty", None)) and stream.isatty())


@contextmanager
def console_above_bars() -> Iterator[None]:
    """Within the block, the root logger's terminal handlers print above the bars."""
    root = logging.getLogger()
    saved = root.handlers[:]
    root.handlers[:] = [_AboveTheBars(h) if _on_terminal(h) else h for h in saved]
    try:
        yield
    finally:
        root.handlers[:] = saved


class LiveDisplay:
    """The bars of one training run of ``epochs`` epochs."""

    def __init__(self, epochs: int, steps_per_epoch: int, val_steps: int) -> None:
        self.epochs = epochs
        self.steps_per_epoch = steps_per_epoch
        self.val_steps = val_steps
        self.epoch = 0
        self.eval_s: float | None = None  # the last validation's duration
        self._bar: tqdm | None = None
        self._started = 0.0
        self._loss = self._img_per_s = math.nan  # as of the last step that logged them

    def _open(self, desc: str, total: int, unit: str) -> tqdm:
        return tqdm(total=total, desc=desc, unit=unit, bar_format=BAR_FORMAT, leave=False,
                    dynamic_ncols=True, file=sys.stderr)

    def start_epoch(self, epoch: int) -> None:
        self.close()
        self.epoch = epoch
        self._started = time.perf_counter()
        self._bar = self._open(f"epoch {epoch + 1}/{self.epochs}", self.steps_per_epoch, "steps")

    def step(self, lr: float, loss: float | None = None, img_per_s: float | None = None) -> None:
        """One training step done; ``loss`` and ``img_per_s`` at the steps that log them."""
        bar = self._bar
        if bar is None:
            return
        if loss is not None and img_per_s is not None:
            self._loss, self._img_per_s = loss, img_per_s
        left = self.run_left_s(bar.n + 1, time.perf_counter() - self._started)
        figures = [f"lr {lr:.5f}", f"run ETA {tqdm.format_interval(left)}"]
        if not math.isnan(self._loss):  # none before the epoch's first log point
            figures[:1] = [f"loss {self._loss:.4f}", figures[0], f"{self._img_per_s:.1f} img/s"]
        bar.set_postfix_str("  ".join(figures), refresh=False)
        bar.update(1)  # draws the bar at most every 0.1 s, and always at a log point:
        if loss is not None:
            bar.refresh()

    def run_left_s(self, steps_done: int, epoch_elapsed_s: float) -> float:
        """Seconds until the run ends: the steps left at this epoch's pace (``steps_done`` >= 1),
        and a validation after each epoch as long as the last one."""
        epochs_after = self.epochs - self.epoch - 1
        steps_left = self.steps_per_epoch - steps_done + epochs_after * self.steps_per_epoch
        eval_s = self.eval_s if self.eval_s is not None else 0.0
        return steps_left * epoch_elapsed_s / steps_done + (epochs_after + 1) * eval_s

    @contextmanager
    def validation(self) -> Iterator[Callable[[], None]]:
        """A bar over the validation batches; yields the callback that counts one."""
        self.close()
        bar = self._open(f"validation {self.epoch + 1}/{self.epochs}", self.val_steps, "batches")
        started = time.perf_counter()

        def count_one() -> None:
            bar.update(1)  # draws at most every 0.1 s; the full bar always, before it clears
            if bar.n == bar.total:
                bar.refresh()

        try:
            yield count_one
        finally:
            bar.close()
            self.eval_s = time.perf_counter() - started

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> LiveDisplay:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
