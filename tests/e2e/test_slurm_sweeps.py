"""Sweeps on a real one-node Slurm cluster (``.ci/slurm.sh start``) through
``hydra/launcher=slurm``: every job runs, ``scancel`` then ``fishbench resume``, and a job that
Slurm signals before its time limit or pre-emption requeues itself and ends as if never stopped."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO, metrics_of, run_cli
from tests.helpers.run_if import RunIf
from tests.helpers.slurm_cluster import sweep_job_ids

pytestmark = [pytest.mark.slow, RunIf(slurm_cluster=True)]

# The README's Slurm sweep (partition, account and time limit are the cluster's defaults here).
SWEEP = ["-m", "hydra/launcher=slurm", "epochs=2", "max_steps_per_epoch=2", "batch_size=16",
         "lr_init=0.05,0.1", "device.cpu_threads=1"]
CLI = [sys.executable, "-c", "import sys; from fishbench.cli import main; sys.exit(main())"]
RESULTS = ("status", "epochs", "steps", "top1", "top5", "loss", "best_top1")


def results(sweep_dir: Path) -> list[tuple]:
    return [tuple(metrics_of(sweep_dir / job)[key] for key in RESULTS) for job in ("0", "1")]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory, fishbench_cache: Path) -> Path:
    sweep_dir = tmp_path_factory.mktemp("slurm") / "sweep"
    proc = run_cli([*SWEEP, f"hydra.sweep.dir={sweep_dir}"])
    assert "Bypassing sacct" not in proc.stdout + proc.stderr  # no accounting: squeue instead
    return sweep_dir


def start_sweep(sweep_dir: Path) -> subprocess.Popen:
    """Start the sweep and return once every job has finished (and checkpointed) epoch 1."""
    proc = subprocess.Popen([sys.executable, str(REPO / "run.py"), *SWEEP,
                             f"hydra.sweep.dir={sweep_dir}"], cwd=REPO, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=os.environ.copy())
    deadline = time.time() + 400
    histories = [sweep_dir / job / "history.csv" for job in ("0", "1")]
    while not all(h.is_file() and len(h.read_text().splitlines()) >= 2 for h in histories):
        assert proc.poll() is None and time.time() < deadline, proc.communicate()[0]
        time.sleep(0.2)
    return proc


def test_grid_sweep_runs_every_job_and_writes_its_summary(uninterrupted: Path) -> None:
    assert [r[:3] for r in results(uninterrupted)] == [("completed", 2, 4)] * 2
    summary = (uninterrupted / "summary.csv").read_text()
    assert "lr_init" in summary and summary.count("completed") == 2


def test_scancel_then_resume_finishes_the_sweep_on_slurm(uninterrupted: Path,
                                                         tmp_path: Path) -> None:
    sweep_dir = tmp_path / "sweep"
    proc = start_sweep(sweep_dir)
    subprocess.run(["scancel", *sweep_job_ids(sweep_dir)], check=True)
    output, _ = proc.communicate(timeout=300)
    assert proc.returncode == 1, output  # the jobs ended interrupted; the summary says so
    assert [metrics_of(sweep_dir / job)["status"] for job in ("0", "1")] == ["interrupted"] * 2
    assert "fishbench resume" in (sweep_dir / "summary.md").read_text() + output
    resumed = subprocess.run([*CLI, "resume", str(sweep_dir)], text=True, capture_output=True,
                             timeout=600)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert results(sweep_dir) == results(uninterrupted)


def test_signalled_job_requeues_itself_and_ends_as_if_never_stopped(uninterrupted: Path,
                                                                    tmp_path: Path) -> None:
    """Slurm's signal ahead of the time limit or pre-emption (submitit's USR2, what
    ``--signal=USR2@signal_delay_s`` sends): interrupted, requeued, continued from epoch 1."""
    sweep_dir = tmp_path / "sweep"
    proc = start_sweep(sweep_dir)
    subprocess.run(["scancel", "--signal=USR2", *sweep_job_ids(sweep_dir)], check=True)
    output, _ = proc.communicate(timeout=400)
    assert proc.returncode == 0, output
    assert results(sweep_dir) == results(uninterrupted)
    for job in ("0", "1"):
        log = (sweep_dir / job / "run.log").read_text()
        assert "requeueing Slurm job" in log and "resumed from" in log and "at epoch 1" in log


def test_time_limit_past_the_requeue_limit_stops_with_a_message(tmp_path: Path,
                                                                fishbench_cache: Path) -> None:
    """A job that cannot finish in its time limit: signalled 30 s ahead of the 1-minute limit
    (Slurm checks limits every 30 s or so), it stops interrupted and, with no requeue left, says
    what to raise."""
    sweep_dir = tmp_path / "sweep"
    proc = run_cli(["-m", "hydra/launcher=slurm", "epochs=100", "max_steps_per_epoch=2",
                    "batch_size=16", "device.cpu_threads=1", "hydra.launcher.timeout_min=1",
                    "hydra.launcher.signal_delay_s=30", "hydra.launcher.max_num_timeout=0",
                    f"hydra.sweep.dir={sweep_dir}"], check=False, timeout=400)
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    m = metrics_of(sweep_dir / "0")
    assert m["status"] == "interrupted"
    assert "hydra.launcher.max_num_timeout=0" in m["error"]
    assert f"fishbench resume {sweep_dir}" in m["error"]
