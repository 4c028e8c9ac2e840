"""The live progress display of a real run: on a terminal (a pseudo-terminal) the bars show and
count the steps and the validation batches; piped, there is no bar and every log line is as the
run's log file has it."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from conftest import REPO, TINY, run_cli
from fishbench.run.config_record import read_config_record, read_hydra_yaml
from fishbench.run.records import CONFIG_RECORD

pytestmark = pytest.mark.slow
# One compute thread for tiny steps on a shared CPU; 3 train steps and 3 val batches of 16.
ARGS = [*TINY, "device.cpu_threads=1", "dataset=synthetic", "dataset.num_classes=4",
        "dataset.image_size=32", "dataset.train_samples=48", "dataset.val_samples=48"]
VAL_BATCHES = 3
STEP_LINE = re.compile(r"epoch 1/1 step (\d)/3  loss [\d.]+  lr [\d.]+  [\d.]+ img/s")


def run_on_terminal(args: list[str], timeout: float = 600) -> str:
    """``python run.py ARGS`` with stdout and stderr on a 160-column pseudo-terminal; what the
    terminal received."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))
    proc = subprocess.Popen([sys.executable, str(REPO / "run.py"), *args], cwd=REPO,
                            stdin=subprocess.DEVNULL, stdout=slave, stderr=slave)
    os.close(slave)
    received = bytearray()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if select.select([master], [], [], 1.0)[0]:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the run closed the terminal
                break
            if not chunk:
                break
            received += chunk
    os.close(master)
    assert proc.wait(timeout=60) == 0, received.decode(errors="replace")[-3000:]
    return received.decode(errors="replace")


def fishbench_lines(text: str) -> list[str]:
    """fishbench's log lines of ``text``, without their time stamps."""
    return [line.split("]", 1)[1].strip() for line in text.splitlines()
            if "][fishbench][" in line]


def test_bars_on_a_terminal_and_the_step_lines_in_the_log_file(fishbench_cache, tmp_path) -> None:
    run_dir = tmp_path / "run"
    shown = run_on_terminal([*ARGS, f"hydra.run.dir={run_dir}"])
    frames = re.split(r"[\r\n]+", shown)
    counts = [int(m.group(1)) for f in frames if (m := re.search(r"epoch 1/1: (\d)/3 steps", f))]
    assert counts[-1] == 3 and {1, 2, 3} <= set(counts) and counts == sorted(counts)
    assert any(re.search(r"loss [\d.]+  lr [\d.]+  [\d.]+ img/s  run ETA \d\d:\d\d", f)
               for f in frames)
    assert any(f"validation 1/1: {VAL_BATCHES}/{VAL_BATCHES} batches" in f for f in frames)
    log_file = (run_dir / "run.log").read_text()
    assert [STEP_LINE.fullmatch(line.split("- ", 1)[1]).group(1) for line in
            log_file.splitlines() if " step " in line] == ["1", "2", "3"]
    # On the terminal: every line of the log file but the step lines, which the bars replace.
    assert fishbench_lines(shown.replace("\r", "\n")) == [
        line for line in fishbench_lines(log_file) if not STEP_LINE.search(line)]
    assert "epoch 1/1 done: " in shown
    record = read_config_record(run_dir)  # written at the run's start
    assert (run_dir / ".hydra" / CONFIG_RECORD).is_file() and record == read_hydra_yaml(run_dir)
    assert record.overrides["max_steps_per_epoch"] == 3


def test_no_bars_when_piped_and_every_log_line_as_in_the_log_file(fishbench_cache,
                                                                   tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    proc = run_cli([*ARGS, f"hydra.run.dir={run_dir}"])
    assert "\r" not in proc.stdout + proc.stderr
    assert not re.search(r"steps \||batches \||run ETA", proc.stdout + proc.stderr)
    lines = fishbench_lines(proc.stdout)
    assert [m.group(1) for line in lines if (m := STEP_LINE.search(line))] == ["1", "2", "3"]
    assert lines == fishbench_lines((run_dir / "run.log").read_text())
