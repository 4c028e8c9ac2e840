"""What a run writes about itself: strict JSON metrics, files that honour the umask, a total time
that counts the parts before a resume, and a heap left out of the collector's scans while it
trains and given back when it ends."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest

from fishbench.run.engine import StepLogger
from tests.helpers.stub_backend import StubTrainer, strict_json


def test_metrics_json_is_valid_json_without_numbers_to_write(tmp_path: Path) -> None:
    from fishbench.run.records import RunRecorder

    RunRecorder(tmp_path, {"task": "train"}).finish("failed", top1=math.nan, loss=math.inf)
    m = strict_json(tmp_path / "metrics.json")
    assert (m["top1"], m["loss"], m["status"]) == (None, None, "failed")
    assert "best_top1" not in m  # no epoch finished: no best (compare shows "-")


def test_results_and_checkpoints_honour_the_umask(hydra_run, tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        hydra_run("epochs=1", f"hydra.run.dir={tmp_path}")
    finally:
        os.umask(old)
    for name in ("metrics.json", "history.csv", "checkpoints/last.pkl"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o640, name


def test_total_time_counts_the_parts_before_a_resume(hydra_run, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    StubTrainer.script = {"loss": {2: math.nan}}
    clock = [1000.0]
    monkeypatch.setattr(time, "time", lambda: clock[0])
    real_step = StepLogger.step

    def slow_step(self, *args):  # every step takes 10 s of the (fake) wall clock
        clock[0] += 10.0
        return real_step(self, *args)

    monkeypatch.setattr(StepLogger, "step", slow_step)
    hydra_run(f"hydra.run.dir={tmp_path}")  # epoch 1 (4 steps) saved, epoch 2 diverges
    StubTrainer.script = {}
    clock[0] += 3600.0  # an hour passes before the resume: not run time
    hydra_run("resume=true", f"hydra.run.dir={tmp_path}")
    assert strict_json(tmp_path / "metrics.json")["total_time_s"] == pytest.approx(80.0)


@pytest.mark.parametrize("nan_epoch", [None, 2], ids=["completed", "diverged"])
def test_the_heap_is_frozen_from_the_first_step_to_the_runs_end(hydra_run, tmp_path: Path,
                                                                nan_epoch: int | None) -> None:
    """What exists at a run's first step (the model, loaders, torch.compile's graphs)
    is out of the collector's scans until the run ends, however it ends; then a reference cycle
    of it is reclaimed again (a multirun's next job in this process gets its memory back)."""
    import gc
    import weakref

    class Node:
        pass

    cycle = Node()
    cycle.itself = cycle
    scanned_in_training = []
    losses = {} if nan_epoch is None else {nan_epoch: math.nan}
    StubTrainer.script = {"call_at": (1, 2), "loss": losses,
                          "call": lambda: scanned_in_training.append(
                              any(o is cycle for o in gc.get_objects()))}
    assert hydra_run(f"hydra.run.dir={tmp_path}") == (0 if nan_epoch is None else 2)
    assert scanned_in_training == [False]
    assert any(o is cycle for o in gc.get_objects()) and gc.get_freeze_count() == 0
    ref = weakref.ref(cycle)
    del cycle
    gc.collect()
    assert ref() is None
