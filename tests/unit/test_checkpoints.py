"""Checkpoints: the policy (names, cadence, retention, atomic writes), path resolution, loading
any backend's file into a trainer, and what a PyTorch checkpoint holds and restores."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from conftest import tiny_trainer

from fishbench.config import validate
from fishbench.errors import CheckpointError
from fishbench.run.checkpoints import (CheckpointPolicy, Progress, checkpoint_meta,
                                       load_checkpoint_into, resolve_checkpoint)
from fishbench.run.schedule import LRSchedule


def test_last_best_and_every_n_epochs_keeping_the_newest(tmp_path: Path) -> None:
    policy = CheckpointPolicy(tmp_path, ".pt", save_every=2, keep_max=2)
    for epoch in range(1, 8):
        policy.save(epoch, final=epoch == 7, is_best=epoch in (1, 3),
                    write=lambda tmp, e=epoch: tmp.write_text(f"epoch {e}"))
    files = {p.name: p.read_text() for p in (tmp_path / "checkpoints").iterdir()}
    assert files == {"last.pt": "epoch 7", "best.pt": "epoch 3", "epoch_0006.pt": "epoch 6",
                     "epoch_0007.pt": "epoch 7"}


def test_a_failed_write_keeps_the_previous_checkpoint(tmp_path: Path) -> None:
    policy = CheckpointPolicy(tmp_path, ".pt", save_every=1, keep_max=5)
    policy.save(1, False, True, lambda tmp: tmp.write_text("good"))

    def crash(tmp: Path) -> None:
        tmp.write_text("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        policy.save(2, False, True, crash)
    assert policy.last.read_text() == "good"
    assert sorted(p.name for p in policy.dir.iterdir()) == ["best.pt", "epoch_0001.pt", "last.pt"]


def test_resolve_accepts_a_file_a_run_dir_or_its_checkpoints_dir(tmp_path: Path) -> None:
    CheckpointPolicy(tmp_path, ".ckpt", 1, 1).save(1, True, True, lambda t: t.write_text("x"))
    last = tmp_path / "checkpoints" / "last.ckpt"
    for given in (last, tmp_path, tmp_path / "checkpoints"):
        assert resolve_checkpoint(given, (".pt", ".ckpt")) == last
    with pytest.raises(CheckpointError, match="does not exist or holds no checkpoint"):
        resolve_checkpoint(tmp_path / "nope", (".pt",))


class WeightsOnlyTrainer:
    """What :func:`load_checkpoint_into` uses of a trainer, recording what it is given."""

    def __init__(self, model: str = "resnet50", num_classes: int = 4) -> None:
        self.cfg = validate(OmegaConf.create({"model": {"name": model}}))
        self.cfg.model.num_classes = num_classes
        self.loaded: list[tuple[str, Any]] = []

    def load_checkpoint(self, path: Path, full: bool) -> dict[str, Any]:
        self.loaded.append(("checkpoint", full))
        return {"epoch": 3}

    def load_weights(self, weights: dict[str, np.ndarray]) -> None:
        if "unknown" in weights:
            raise ValueError("torch state-dict keys do not match resnet50: unexpected keys: unknown")
        self.loaded.append(("weights", weights))


def torch_file(path: Path, model: str = "resnet50", extra: dict[str, Any] | None = None) -> Path:
    from fishbench.backends.pytorch.checkpoint import write_checkpoint

    write_checkpoint(path, {"meta": {"model": model, "num_classes": 4, "epoch": 2},
                            "state_dict": {"fc.bias": torch.arange(4.0), **(extra or {})}})
    return path


def test_a_file_of_the_running_backend_goes_to_its_trainer(tmp_path: Path) -> None:
    trainer = WeightsOnlyTrainer()
    for suffix, full in ((".pt", True), (".pt", False), (".bin", False)):
        assert load_checkpoint_into(trainer, tmp_path / f"last{suffix}", ".pt", full) == {"epoch": 3}
    assert trainer.loaded == [("checkpoint", True), ("checkpoint", False), ("checkpoint", False)]


def test_another_backends_file_gives_its_weights_named_as_torchs(tmp_path: Path) -> None:
    trainer = WeightsOnlyTrainer()
    meta = load_checkpoint_into(trainer, torch_file(tmp_path / "last.pt"), ".ckpt", full=False)
    assert meta["epoch"] == 2
    [(kind, weights)] = trainer.loaded
    assert kind == "weights" and list(weights) == ["fc.bias"]
    assert weights["fc.bias"].tolist() == [0.0, 1.0, 2.0, 3.0]


def test_another_backends_file_is_checked_before_its_weights_load(tmp_path: Path) -> None:
    trainer = WeightsOnlyTrainer()
    with pytest.raises(CheckpointError, match="holds a fishnet99 checkpoint, but model=resnet50"):
        load_checkpoint_into(trainer, torch_file(tmp_path / "a.pt", "fishnet99"), ".ckpt", False)
    path = torch_file(tmp_path / "b.pt", extra={"unknown": torch.zeros(1)})
    with pytest.raises(CheckpointError, match=r"'.*b\.pt': .*unexpected keys: unknown\. Was it "
                                              "written by another version of fishbench"):
        load_checkpoint_into(trainer, path, ".ckpt", False)
    with pytest.raises(CheckpointError, match="resume=true continues a run of the same backend"):
        load_checkpoint_into(trainer, tmp_path / "last.ckpt", ".pt", full=True)
    assert trainer.loaded == []


class SilentLogger:
    """A step logger that logs nothing."""

    def due(self, step_in_epoch: int) -> bool:
        return False

    def step(self, *args: Any) -> None:
        pass


def test_a_torch_checkpoint_holds_tensors_and_plain_values_and_restores_the_run(
        tmp_path: Path) -> None:
    """What resume relies on: the file loads with ``weights_only=True`` and a full load restores
    the model, the optimizer's momentum and torch's, numpy's and Python's RNGs exactly."""
    from fishbench.backends.pytorch.trainer import TorchTrainer

    trainer = tiny_trainer(TorchTrainer, model={"name": "resnet50"})
    trainer.train_epoch(0, LRSchedule(trainer.cfg, trainer.steps_per_epoch), 0, SilentLogger())
    path = tmp_path / "last.pt"
    meta = checkpoint_meta(trainer, Progress(1, 2), 0.0, LRSchedule(trainer.cfg, 2))
    trainer.save_checkpoint(path, meta, trainer.rank_rng_states())
    assert torch.load(path, weights_only=True)["meta"] == meta
    saved = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    momentum = [s["momentum_buffer"].clone() for s in trainer.optimizer.state.values()]
    drawn = (torch.rand(3), np.random.rand(3), random.random())

    other = tiny_trainer(TorchTrainer, model={"name": "resnet50"}, seed=7)
    torch.manual_seed(1), np.random.seed(1), random.seed(1)
    assert other.load_checkpoint(path, full=True) == meta
    assert all(torch.equal(v, other.model.state_dict()[k]) for k, v in saved.items())
    restored = [s["momentum_buffer"] for s in other.optimizer.state.values()]
    assert len(restored) == len(momentum) > 0
    assert all(torch.equal(a, b) for a, b in zip(momentum, restored))
    assert torch.equal(torch.rand(3), drawn[0]) and np.array_equal(np.random.rand(3), drawn[1])
    assert random.random() == drawn[2]
