"""Checkpoints when things go wrong: a diverged run keeps only finite checkpoints, a resume must
continue the run as it was (batch size, world), a full disk fails the run cleanly, and the temp
files of a killed write are removed."""

from __future__ import annotations

import errno
import math
import os
import pickle
import signal
from pathlib import Path

import numpy as np
import pytest

from tests.helpers.stub_backend import StubTrainer, digest, strict_json


def test_nan_in_epoch_1_says_no_checkpoint_exists(hydra_run, tmp_path: Path) -> None:
    StubTrainer.script = {"loss": {1: math.nan}}
    assert hydra_run(f"hydra.run.dir={tmp_path}") == 2
    m = strict_json(tmp_path / "metrics.json")
    assert m["status"] == "failed" and "No checkpoint of this run exists" in m["error"]
    assert "resume=true" not in m["error"] and not (tmp_path / "checkpoints").exists()


def test_an_infinite_buffer_is_never_saved_as_good(hydra_run, tmp_path: Path) -> None:
    StubTrainer.script = {"inf_buffer_epoch": 2}
    assert hydra_run("epochs=3", f"hydra.run.dir={tmp_path}") == 2
    m = strict_json(tmp_path / "metrics.json")
    assert "parameter or buffer" in m["error"] and "checkpoints/last of epoch 1" in m["error"]
    saved = pickle.loads((tmp_path / "checkpoints" / "last.pkl").read_bytes())
    assert saved["meta"]["epoch"] == 1 and np.isfinite(saved["weights"]["running_var"]).all()
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [
        "best.pkl", "epoch_0001.pkl", "last.pkl"]


def test_resume_refuses_a_checkpoint_with_infinite_buffers(hydra_run, tmp_path: Path) -> None:
    StubTrainer.script = {"loss": {2: math.nan}}
    hydra_run(f"hydra.run.dir={tmp_path}")
    last = tmp_path / "checkpoints" / "last.pkl"
    saved = pickle.loads(last.read_bytes())
    saved["weights"]["running_var"][:] = np.inf  # as written before this check existed
    last.write_bytes(pickle.dumps(saved))
    StubTrainer.script = {}
    assert hydra_run("resume=true", f"hydra.run.dir={tmp_path}") == 2
    assert "NaN or infinite parameters or buffers" in strict_json(tmp_path / "metrics.json")["error"]


def test_resume_with_another_batch_size_is_refused(hydra_run, tmp_path: Path) -> None:
    StubTrainer.script = {"call_at": (2, 0), "call": lambda: os.kill(os.getpid(), signal.SIGINT)}
    assert hydra_run(f"hydra.run.dir={tmp_path}") == 130
    StubTrainer.script = {}
    for size in ("32", "8"):
        assert hydra_run("resume=true", f"batch_size={size}", f"hydra.run.dir={tmp_path}") == 2
        error = strict_json(tmp_path / "metrics.json")["error"]
        assert f"batch_size=16 on 1 process(es), this run has batch_size={size}" in error
    assert hydra_run("resume=true", f"hydra.run.dir={tmp_path}") == 0
    assert strict_json(tmp_path / "metrics.json")["steps"] == 8


def test_resume_with_another_world_is_refused_before_any_worker_starts(
        hydra_run, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """The stub backend's launcher fails the test if it is called."""
    assert hydra_run("epochs=1", f"hydra.run.dir={tmp_path}") == 0
    before = set(digest(tmp_path))
    capsys.readouterr()
    assert hydra_run('world="2"', "epochs=2", "resume=true", f"hydra.run.dir={tmp_path}") == 2
    out = capsys.readouterr().out
    assert "batch_size=16 on 1 process(es), this run has batch_size=16 on 2" in out
    assert "world=1" in out and "Traceback" not in out
    assert set(digest(tmp_path)) == before  # no worker config, no rank logs


def test_resume_removes_temp_files_of_a_write_that_was_killed(hydra_run, tmp_path: Path) -> None:
    StubTrainer.script = {"loss": {2: math.nan}}
    hydra_run(f"hydra.run.dir={tmp_path}")
    orphans = [tmp_path / "checkpoints" / ".last.pkl.abc123.tmp", tmp_path / ".metrics.json.x.tmp"]
    for orphan in orphans:
        orphan.write_bytes(b"half")
    StubTrainer.script = {}
    assert hydra_run("resume=true", f"hydra.run.dir={tmp_path}") == 0
    assert not any(p.exists() for p in orphans)


def disk_full_at_epoch(epoch: int):
    """A checkpoint writer that fills the disk halfway through epoch ``epoch``'s file."""

    def write(path: Path, data: bytes) -> None:
        if pickle.loads(data)["meta"]["epoch"] == epoch:
            path.write_bytes(data[:10])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        path.write_bytes(data)

    return write


def test_disk_full_while_checkpointing_fails_the_run_cleanly(
        hydra_run, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    StubTrainer.script = {"write_checkpoint": disk_full_at_epoch(2)}
    assert hydra_run(f"hydra.run.dir={tmp_path}") == 1
    out = capsys.readouterr().out
    assert "No space left on device" in out and "Traceback" not in out
    m = strict_json(tmp_path / "metrics.json")
    assert m["status"] == "failed" and "No space left on device" in m["error"]
    assert str(tmp_path / "checkpoints" / "last.pkl") in m["error"]
    assert [row.split(",")[0] for row in (tmp_path / "history.csv").read_text().split()] == [
        "epoch", "1"]  # no row for the epoch whose checkpoint failed
    assert pickle.loads((tmp_path / "checkpoints" / "last.pkl").read_bytes())["meta"]["epoch"] == 1
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [
        "best.pkl", "epoch_0001.pkl", "last.pkl"]
    StubTrainer.script = {}
    assert hydra_run("resume=true", f"hydra.run.dir={tmp_path}") == 0


def test_a_failure_that_cannot_be_recorded_is_still_one_paragraph(
        hydra_run, tmp_path: Path, capsys: pytest.CaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The disk stays full: writing metrics.json fails too, and says so in one line."""
    from fishbench.run import records

    real_write = records.write_metrics

    def write_metrics(run_dir: Path, metrics: dict) -> None:
        if metrics.get("status") == "failed":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_write(run_dir, metrics)

    monkeypatch.setattr(records, "write_metrics", write_metrics)
    monkeypatch.setattr("fishbench.run.app.write_metrics", write_metrics)
    StubTrainer.script = {"write_checkpoint": disk_full_at_epoch(2)}
    assert hydra_run(f"hydra.run.dir={tmp_path}") == 1
    out = capsys.readouterr().out
    assert "Traceback" not in out and "During handling" not in out
    assert f"could not record the failure in {tmp_path / 'metrics.json'}" in out
