"""Jobs that run at once on the node share its cores: a joblib multirun's jobs each get their
share of the compute threads instead of all spinning on every core."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import run_cli
from fishbench.run.cores import usable_cores

pytestmark = pytest.mark.slow

JOB = ["dataset=synthetic", "dataset.num_classes=4", "dataset.image_size=32",
       "dataset.train_samples=16", "dataset.val_samples=8", "batch_size=8", "epochs=1",
       "warmup_epochs=0", "max_steps_per_epoch=1"]


def job_threads(sweep_dir: Path) -> list[int]:
    return [json.loads((job / "metrics.json").read_text())["settings"]["cpu_threads"]
            for job in sorted(p for p in sweep_dir.iterdir() if (p / "metrics.json").exists())]


def test_joblib_jobs_running_at_once_share_the_cores(node_cores, tmp_path: Path) -> None:
    run_cli(["-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
             f"hydra.sweep.dir={tmp_path}", "seed=1,2", *JOB])
    assert job_threads(tmp_path) == [max(usable_cores() // 2, 1)] * 2
