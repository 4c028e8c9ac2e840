"""Resuming real sweeps (`python run.py -m`, `fishbench resume`) killed by SIGKILL or SIGTERM:
finished jobs untouched, interrupted ones continued, an Optuna study completed; and the refusals."""

from __future__ import annotations

import csv
import hashlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import REPO, fishbench_cli, metrics_of, run_cli

from fishbench.sweeps.resume import plan_job
from tests.helpers.run_if import RunIf

pytestmark = pytest.mark.slow

# Tiny real jobs: 2 epochs of 2 steps, a checkpoint every epoch, 32 px synthetic images.
JOB = ["epochs=2", "save_checkpoint_epochs=1", "max_steps_per_epoch=2", "batch_size=16",
       "log_every_n_steps=1", "dataset=synthetic", "dataset.image_size=32",
       "dataset.num_classes=10", "dataset.train_samples=32", "dataset.val_samples=16"]
MID_EPOCH_2 = "epoch 2/2 step 1/2"  # logged once the epoch-1 checkpoint is written
STEPS = 4
GRID = ["lr_init=0.02,0.05", "T_max=1,2", *JOB]
OPTUNA = ["+sweep=optuna_fishnet99", "hydra.sweeper.n_trials=4", "amp=false", *JOB]


def fishbench_resume(sweep_dir: Path, *args: str) -> subprocess.CompletedProcess:
    return fishbench_cli(["resume", str(sweep_dir), *args])


def start_and_stop(args: list[str], sweep_dir: Path, job: int, line: str,
                   sig: signal.Signals = signal.SIGKILL) -> tuple[int, str]:
    """Start a multirun and send ``sig`` to its process (by PID) once job ``job`` logged
    ``line``; return its exit status and output."""
    proc = subprocess.Popen([sys.executable, str(REPO / "run.py"), "-m", *args,
                             f"hydra.sweep.dir={sweep_dir}"], text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    log, deadline = sweep_dir / str(job) / "run.log", time.monotonic() + 300
    while not (log.is_file() and line in log.read_text()):
        assert proc.poll() is None, f"the sweep ended before job {job} logged {line!r}"
        assert time.monotonic() < deadline, f"job {job} never logged {line!r}"
        time.sleep(0.02)
    os.kill(proc.pid, sig)
    output, _ = proc.communicate(timeout=120)
    return proc.returncode, output


def files_state(job_dir: Path, content: bool = True) -> dict[str, tuple[str | int, int]]:
    """Every file under ``job_dir`` (results, checkpoints, .hydra/): its SHA-256 (or, without
    ``content``, its size) and its mtime."""
    return {str(p.relative_to(job_dir)): (
        hashlib.sha256(p.read_bytes()).hexdigest() if content else p.stat().st_size,
        p.stat().st_mtime_ns) for p in sorted(job_dir.rglob("*")) if p.is_file()}


def history_epochs(job_dir: Path) -> list[int]:
    with (job_dir / "history.csv").open() as f:
        return [int(row["epoch"]) for row in csv.DictReader(f)]


def summary_rows(sweep_dir: Path) -> list[dict[str, str]]:
    with (sweep_dir / "summary.csv").open() as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def killed_grid(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A 2 x 2 grid killed (SIGKILL) in the middle of job 2's second epoch, then resumed."""
    sweep_dir = tmp_path_factory.mktemp("grid") / "sweep"
    start_and_stop(GRID, sweep_dir, 2, MID_EPOCH_2)
    assert metrics_of(sweep_dir / "2")["status"] == "running" and history_epochs(
        sweep_dir / "2") == [1], "the kill missed the middle of job 2's second epoch"
    assert not (sweep_dir / "3").exists() and not (sweep_dir / "summary.csv").exists()
    before = {job: files_state(sweep_dir / job) for job in ("0", "1")}
    history = (sweep_dir / "2" / "history.csv").read_text()
    resumed = fishbench_resume(sweep_dir)
    return {"dir": sweep_dir, "before": before, "history_2": history, "resumed": resumed}


def test_resume_keeps_completed_jobs_untouched(killed_grid: dict) -> None:
    assert killed_grid["resumed"].returncode == 0, killed_grid["resumed"].stderr[-3000:]
    for job in ("0", "1"):
        after = files_state(killed_grid["dir"] / job)
        assert after == killed_grid["before"][job]  # not launched: not even .hydra/ rewritten
        assert {"metrics.json", "history.csv", "checkpoints/last.pt"} <= set(after)


def test_interrupted_job_continues_from_its_checkpoint_to_the_full_step_count(
        killed_grid: dict) -> None:
    job_dir = killed_grid["dir"] / "2"
    metrics = metrics_of(job_dir)
    assert metrics["status"] == "completed" and metrics["epochs"] == 2 and metrics["steps"] == STEPS
    assert history_epochs(job_dir) == [1, 2]
    first_row = (job_dir / "history.csv").read_text().splitlines()[1]
    assert first_row == killed_grid["history_2"].splitlines()[1]  # epoch 1 kept as it was
    assert "resumed from" in (job_dir / "run.log").read_text()
    assert "at epoch 1, step 2" in (job_dir / "run.log").read_text()
    overrides = yaml.safe_load((job_dir / ".hydra" / "overrides.yaml").read_text())
    assert "lr_init=0.05" in overrides and "T_max=1" in overrides and "resume=true" not in overrides


def test_job_never_started_runs_under_its_own_number(killed_grid: dict) -> None:
    job_dir = killed_grid["dir"] / "3"
    assert metrics_of(job_dir)["status"] == "completed" and metrics_of(job_dir)["steps"] == STEPS
    overrides = yaml.safe_load((job_dir / ".hydra" / "overrides.yaml").read_text())
    assert "lr_init=0.05" in overrides and "T_max=2" in overrides
    assert "resumed from" not in (job_dir / "run.log").read_text()


def test_resumed_summary_covers_all_jobs(killed_grid: dict) -> None:
    rows = summary_rows(killed_grid["dir"])
    assert sorted((r["job"], r["lr_init"], r["T_max"], r["status"]) for r in rows) == [
        ("0", "0.02", "1", "completed"), ("1", "0.02", "2", "completed"),
        ("2", "0.05", "1", "completed"), ("3", "0.05", "2", "completed")]


@pytest.mark.parametrize("change, message", [
    (lambda args: [a.replace("0.05", "0.1") for a in args] + ["hydra.sweeper.resume=true"],
     "would change the sweep"),
    (lambda args: args, "already holds a sweep"),  # no resume: it would overwrite the jobs
    (lambda args: [*args, "resume=true"], "resume=true continues one run"),
    (lambda args: [*args, "+sweep_resume=true"], "'sweep_resume' is not a fishbench key"),
])
def test_a_command_that_changes_or_overwrites_the_sweep_is_refused_with_nothing_written(
        killed_grid: dict, change, message: str) -> None:
    sweep_dir = killed_grid["dir"]
    before = files_state(sweep_dir, content=False)
    proc = run_cli(["-m", *change(GRID), f"hydra.sweep.dir={sweep_dir}"], check=False)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr[-3000:]
    assert "fishbench resume" in proc.stderr and "Traceback" not in proc.stderr
    assert files_state(sweep_dir, content=False) == before


def test_resume_of_a_dir_that_is_not_a_sweep_is_refused(tmp_path: Path) -> None:
    proc = fishbench_resume(tmp_path)
    assert proc.returncode == 2 and "is not a sweep dir" in proc.stderr
    assert list(tmp_path.iterdir()) == []


@RunIf(optuna=True)
@pytest.mark.filterwarnings("ignore:The ``declarative_base")  # optuna 2.10 on SQLAlchemy 2
def test_optuna_sweep_killed_after_two_trials_resumes_to_four(tmp_path: Path) -> None:
    import optuna

    sweep_dir = tmp_path / "sweep"
    start_and_stop(OPTUNA, sweep_dir, 2, MID_EPOCH_2)
    before = {job: files_state(sweep_dir / job) for job in ("0", "1")}
    storage = f"sqlite:///{sweep_dir}/optuna.db"
    study = optuna.load_study(study_name="fishnet99_lr", storage=storage)
    assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE", "RUNNING"]

    proc = fishbench_resume(sweep_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "alembic" not in proc.stdout + proc.stderr  # the study's migrations: no chatter
    trials = optuna.load_study(study_name="fishnet99_lr", storage=storage).trials
    assert [(t.number, t.state.name) for t in trials] == [(n, "COMPLETE") for n in range(4)]
    for job in ("0", "1"):
        assert files_state(sweep_dir / job) == before[job]
    for trial in trials:  # trial n in job dir n, with the value its run returned
        metrics = metrics_of(sweep_dir / str(trial.number))
        assert metrics["status"] == "completed" and metrics["steps"] == STEPS
        assert trial.value == pytest.approx(metrics["top1"])
        overrides = yaml.safe_load(
            (sweep_dir / str(trial.number) / ".hydra" / "overrides.yaml").read_text())
        assert f"T_max={trial.params['T_max']}" in overrides
    assert "resumed from" in (sweep_dir / "2" / "run.log").read_text()
    assert trials[3].params not in [t.params for t in trials[:3]]  # the sampler went on
    assert sorted(r["job"] for r in summary_rows(sweep_dir)) == ["0", "1", "2", "3"]


def test_sigterm_stops_the_sweep_with_the_summary_so_far(tmp_path: Path) -> None:
    sweep_dir = tmp_path / "sweep"  # Slurm's time limit: the job is marked, the summary written
    status, output = start_and_stop(["lr_init=0.02", *JOB], sweep_dir, 0, MID_EPOCH_2,
                                    signal.SIGTERM)
    assert status == 130 and f"fishbench resume {sweep_dir}" in output, output[-3000:]
    assert "Traceback" not in output and not (sweep_dir / "sweep.pid").exists()
    (row,) = summary_rows(sweep_dir)
    assert (row["job"], row["status"]) == ("0", "interrupted")
    assert plan_job(sweep_dir, 0, retry_failed=False).action == "continue"


def test_failed_jobs_exit_1_and_run_again_only_when_asked(tmp_path: Path) -> None:
    sweep_dir = tmp_path / "sweep"
    proc = run_cli(["-m", "lr_init=-1,-2", *JOB, f"hydra.sweep.dir={sweep_dir}"], check=False)
    assert proc.returncode == 1 and "2 of 2 jobs did not complete" in proc.stderr + proc.stdout
    assert {r["status"] for r in summary_rows(sweep_dir)} == {"failed"}
    before = {job: files_state(sweep_dir / job) for job in ("0", "1")}

    kept = fishbench_resume(sweep_dir)
    assert kept.returncode == 1
    assert {job: files_state(sweep_dir / job) for job in ("0", "1")} == before

    retried = fishbench_resume(sweep_dir, "--retry-failed")
    assert retried.returncode == 1
    for job in ("0", "1"):
        metrics_file = sweep_dir / job / "metrics.json"
        assert metrics_file.stat().st_mtime_ns > before[job]["metrics.json"][1]
        assert metrics_of(sweep_dir / job)["status"] == "failed"


def test_a_sweep_whose_process_is_alive_is_not_resumed(killed_grid: dict) -> None:
    sweep_dir = killed_grid["dir"]
    owner = sweep_dir / "sweep.pid"
    owner.write_text(f"{socket.gethostname()} {os.getpid()}\n")  # this test's process: alive
    try:
        before = files_state(sweep_dir, content=False)
        proc = fishbench_resume(sweep_dir)
        assert proc.returncode == 2 and "is still running (process" in proc.stderr
        assert files_state(sweep_dir, content=False) == before
    finally:
        owner.unlink()
