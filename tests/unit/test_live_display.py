"""The live progress display's decisions: when it shows, the run's time left, and which log lines
reach a terminal while it shows (tests/e2e/test_live_progress.py runs it on a pseudo-terminal)."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest

from fishbench.config import validate
from fishbench.errors import ConfigError
from fishbench.run.live import STEP_LINE, LiveDisplay, console_above_bars, display_wanted
from omegaconf import OmegaConf


def test_shown_only_on_rank_0_and_as_the_setting_says(monkeypatch) -> None:
    monkeypatch.setattr("sys.stdout", io.StringIO())  # not a terminal
    monkeypatch.setattr("sys.stderr", io.StringIO())
    assert display_wanted(True, 0) and not display_wanted("auto", 0)
    assert not display_wanted(False, 0) and not display_wanted(True, 1)


@pytest.mark.parametrize("value", [2, "on", "yes"])
def test_progress_takes_auto_true_or_false(value) -> None:
    assert validate(OmegaConf.create({"progress": True})).progress is True
    with pytest.raises(ConfigError, match="'progress' is .*auto .*true or false"):
        validate(OmegaConf.create({"progress": value}))


def test_the_run_time_left_counts_the_steps_and_validations_to_come() -> None:
    display = LiveDisplay(epochs=3, steps_per_epoch=10, val_steps=4)
    display.epoch = 1  # the second of three epochs, 4 steps done in 2 s: 0.5 s a step
    assert display.run_left_s(4, 2.0) == pytest.approx((6 + 10) * 0.5)
    display.eval_s = 1.5  # then two validations like the last one
    assert display.run_left_s(4, 2.0) == pytest.approx((6 + 10) * 0.5 + 2 * 1.5)
    display.epoch = 2
    assert display.run_left_s(10, 5.0) == pytest.approx(1.5)  # only the last validation


class Terminal(io.StringIO):
    """A console stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_every_line_but_the_step_lines_while_bars_show(tmp_path: Path) -> None:
    terminal = Terminal()
    piped = io.StringIO()
    handlers = [logging.StreamHandler(terminal), logging.StreamHandler(piped),
                logging.FileHandler(tmp_path / "run.log")]
    root = logging.getLogger()
    saved, level = root.handlers[:], root.level
    root.handlers[:] = handlers
    root.setLevel(logging.INFO)  # setLevel, not .level: it clears the loggers' level caches
    log = logging.getLogger("fishbench")
    log_state = log.level, log.propagate, log.disabled
    log.setLevel(logging.NOTSET)
    log.propagate, log.disabled = True, False  # as a run sets it
    try:
        with console_above_bars():
            log.info("epoch 1/1 step 1/3", extra={STEP_LINE: True})
            log.info("epoch 1/1 done")
        log.info("epoch 1/1 step 1/3", extra={STEP_LINE: True})  # no bars: as always
        assert root.handlers == handlers
    finally:
        root.handlers[:] = saved
        root.setLevel(level)
        log.setLevel(log_state[0])
        log.propagate, log.disabled = log_state[1:]
        for handler in handlers:
            handler.close()
    shown = terminal.getvalue().splitlines()
    assert shown == ["epoch 1/1 done", "epoch 1/1 step 1/3"]
    expected = ["epoch 1/1 step 1/3", "epoch 1/1 done", "epoch 1/1 step 1/3"]
    assert piped.getvalue().splitlines() == expected
    assert (tmp_path / "run.log").read_text().splitlines() == expected
