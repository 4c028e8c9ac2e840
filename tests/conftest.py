"""Shared fixtures: the repo's paths, a digits cache per test session, and a `run.py` runner."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

# The Triton kernels (the gpu engine's crop-resize, the float stage on CUDA) run in Triton's
# interpreter on CPU tensors where there is no CUDA; Triton reads this when a module defines them.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
IMAGENET_SAMPLE = SHARED / "data" / "imagenet-sample"
# Tiny but real training: 32x32 digits, a few steps per epoch.
TINY = ["epochs=1", "batch_size=16", "max_steps_per_epoch=3", "log_every_n_steps=1", "warmup_epochs=0"]


@pytest.fixture(scope="session")
def fishbench_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache dir (the digits tree) for the whole session, also for subprocesses."""
    cache = tmp_path_factory.mktemp("cache")
    os.environ["FISHBENCH_CACHE"] = str(cache)
    return cache


def run_cli(args: list[str], cwd: Path = REPO, check: bool = True,
            timeout: float = 600) -> subprocess.CompletedProcess:
    """Run `python run.py ARGS` for real; the caller passes hydra.run.dir or hydra.sweep.dir."""
    proc = subprocess.run([sys.executable, str(REPO / "run.py"), *args], cwd=cwd, text=True,
                          capture_output=True, timeout=timeout, env=os.environ.copy())
    if check and proc.returncode != 0:
        raise AssertionError(f"run.py {' '.join(args)} exited {proc.returncode}:\n"
                             f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def metrics_of(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


@pytest.fixture(scope="module")
def single_torch_thread():
    """One torch intra-op thread for a test module (request it with
    ``pytestmark = pytest.mark.usefixtures("single_torch_thread")``): tiny inputs on a shared
    CPU, where more threads only add contention. Restores the thread count afterwards."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_trainer(trainer_class, **settings):
    """A ``trainer_class`` over 8 synthetic 32x32 images of 4 classes, batch 4; ``settings``
    are config keys merged over that (nested dicts merge)."""
    from omegaconf import OmegaConf

    from fishbench.config import validate
    from fishbench.data.spec import load_data_spec

    cfg = validate(OmegaConf.merge(OmegaConf.create({"batch_size": 4, "dataset": {
        "name": "synthetic", "num_classes": 4, "image_size": 32, "resize_size": 32,
        "train_samples": 8, "val_samples": 4}}), OmegaConf.create(settings)))
    spec = load_data_spec(cfg)
    cfg.model.num_classes = spec.num_classes
    return trainer_class(cfg, spec)


def n_params(model) -> int:
    """Number of parameters (elements) of a torch.nn.Module."""
    return sum(p.numel() for p in model.parameters())


from tests.helpers.stub_backend import hydra_run  # noqa: E402,F401  (run-level tests' fixture)
