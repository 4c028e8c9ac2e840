"""A single key on the command line must run: defaults that depend on it follow it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from conftest import REPO, metrics_of
from fishbench.config import register_resolvers, validate
from fishbench.errors import ConfigError

register_resolvers()


def composed(*overrides: str):
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        return validate(compose("config", overrides=list(overrides)))


@pytest.mark.parametrize("overrides, expected", [
    ((), dict(epochs=6, warmup_epochs=1, T_max=6)),
    (("epochs=1",), dict(epochs=1, warmup_epochs=0, T_max=1)),  # the default warm-up shortened
    (("epochs=10",), dict(epochs=10, warmup_epochs=1, T_max=10)),  # the cosine follows epochs
    (("epochs=3", "warmup_epochs=2"), dict(epochs=3, warmup_epochs=2, T_max=3)),
])
def test_schedule_defaults_follow_epochs(overrides: tuple[str, ...], expected: dict) -> None:
    run = composed(*overrides)
    assert {key: getattr(run, key) for key in expected} == expected


def test_an_explicit_warmup_that_does_not_fit_is_still_refused() -> None:
    with pytest.raises(ConfigError, match="'warmup_epochs' is 1, but it must be between 0 and "
                                          "epochs - 1"):
        composed("epochs=1", "warmup_epochs=1")


@pytest.mark.parametrize("overrides, resize", [
    (("dataset.image_size=64",), 64),
    (("dataset=synthetic", "dataset.image_size=64"), 64),
    (("dataset=imagenet", "dataset.root=/d"), 256),
    (("dataset=imagenet", "dataset.root=/d", "dataset.image_size=320"), 366),
    (("dataset=imagenet", "dataset.root=/d", "dataset.image_size=320",
      "dataset.resize_size=320"), 320),
])
def test_resize_size_follows_image_size(overrides: tuple[str, ...], resize: int) -> None:
    assert composed(*overrides).dataset.resize_size == resize


def test_epochs_1_runs_with_the_default_warmup_shortened(fishbench_cache: Path,
                                                          tmp_path: Path) -> None:
    # `python run.py epochs=1`, capped at 3 steps to stay small; one OpenMP thread (see
    # tests/e2e/test_sweep.py: run_py).
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    args = ["epochs=1", "max_steps_per_epoch=3", f"hydra.run.dir={tmp_path}"]
    proc = subprocess.run([sys.executable, str(REPO / "run.py"), *args], env=env, text=True,
                          capture_output=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = metrics_of(tmp_path)
    assert metrics["status"] == "completed" and metrics["epochs"] == 1 and metrics["steps"] == 3
    log = (tmp_path / "run.log").read_text()
    assert "the default warm-up of 1 epoch(s) is shortened to 0" in log, proc.stdout[-2000:]
