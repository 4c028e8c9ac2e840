"""SIGTERM and SIGINT (Ctrl-C, a Slurm time limit) stop a run, sweep job or world of workers
as interrupted, with how to continue; a second one while the process shuts down ends it at
once, quietly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, run_cli
from tests.helpers.image_trees import small_tree
from tests.helpers.stub_backend import StubTrainer, strict_json


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_marks_the_run_interrupted_with_the_resume_hint(hydra_run, tmp_path: Path,
                                                                 signum: int) -> None:
    StubTrainer.script = {"call_at": (2, 1), "call": lambda: os.kill(os.getpid(), signum)}
    assert hydra_run(f"hydra.run.dir={tmp_path}") == 128 + signum
    m = strict_json(tmp_path / "metrics.json")
    assert m["status"] == "interrupted"
    assert signal.Signals(signum).name in m["error"] and "resume=true" in m["error"]
    StubTrainer.script = {}
    assert hydra_run("resume=true", f"hydra.run.dir={tmp_path}") == 0
    assert strict_json(tmp_path / "metrics.json")["status"] == "completed"


def test_an_interrupted_job_of_a_sweep_points_to_fishbench_resume(hydra_run, tmp_path: Path) -> None:
    StubTrainer.script = {"call_at": (2, 1), "call": lambda: os.kill(os.getpid(), signal.SIGTERM)}
    hydra_run("-m", f"hydra.sweep.dir={tmp_path}", "seed=1")
    error = strict_json(tmp_path / "0" / "metrics.json")["error"]
    assert f"`fishbench resume {tmp_path}`" in error and "resume=true" not in error


SECOND_CTRL_C = """
import atexit, os, signal, sys, time
from fishbench.run.app import stop_on_signals


def cleanup():  # Ctrl-C again while Python runs its cleanup at exit
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(1)


stop_on_signals()
atexit.register(cleanup)
try:
    os.kill(os.getpid(), signal.SIGINT)
except KeyboardInterrupt:
    sys.exit(130)
"""


def test_a_second_ctrl_c_while_shutting_down_exits_quietly() -> None:
    proc = subprocess.run([sys.executable, "-c", SECOND_CTRL_C], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 130 and proc.stderr == "", proc.stderr


def world_2_args(root: Path, run_dir: Path, epochs: int) -> list[str]:
    """World 2 on 16 images of 40x40: 2 steps of 4 per rank and epoch, random 32x32 crops; the
    learning rate of a step does not depend on ``epochs`` (cosine_annealing with a fixed T_max)."""
    return ["world=2", "dataset=imagefolder", f"dataset.root={root}", "dataset.image_size=32",
            "dataset.resize_size=32", "dataset.num_workers=0", "batch_size=4", "lr_init=0.01",
            "schedule=cosine_annealing", "T_max=6", "warmup_epochs=0", "log_every_n_steps=1",
            "save_checkpoint_epochs=1", f"epochs={epochs}", f"hydra.run.dir={run_dir}"]


@pytest.mark.slow
def test_world_2_killed_by_sigterm_resumes_to_the_uninterrupted_result(tmp_path: Path) -> None:
    """SIGTERM (as Slurm sends) to the launcher stops both workers and marks the run interrupted
    (exit 143, no traceback). Rank 1 draws its own random crops: unless its RNG state was saved
    and restored, the resumed run trains on other crops than an uninterrupted one."""
    import time

    import torch

    from fishbench.run.records import read_history

    root = small_tree(tmp_path / "data", classes=2, n=8)
    killed, whole = tmp_path / "killed", tmp_path / "whole"
    proc = subprocess.Popen([sys.executable, str(REPO / "run.py"),
                             *world_2_args(root, killed, epochs=50)], cwd=REPO, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    log, deadline = killed / "rank0.log", time.time() + 300
    while not (log.is_file() and "epoch 2/50 step 1/2" in log.read_text()) and time.time() < deadline:
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, output
    assert "Traceback" not in output
    m = strict_json(killed / "metrics.json")
    assert m["status"] == "interrupted" and "SIGTERM" in m["error"] and "resume=true" in m["error"]
    workers = subprocess.run(["pgrep", "-f", f"fishbench.run.worker {killed}"],
                             capture_output=True, text=True).stdout.split()
    assert workers == []

    epochs = torch.load(killed / "checkpoints" / "last.pt", weights_only=True)["meta"]["epoch"] + 1
    run_cli([*world_2_args(root, killed, epochs), "resume=true"])
    run_cli(world_2_args(root, whole, epochs))
    assert read_history(killed)[-1]["train_loss"] == read_history(whole)[-1]["train_loss"]
    a, b = (torch.load(d / "checkpoints" / "last.pt", weights_only=True)["state_dict"]
            for d in (whole, killed))
    assert all(torch.equal(a[k], b[k]) for k in a)
