"""Checkpoint files that cannot serve: a file that is not a checkpoint, weights that do not fit
the model, weights that are not finite, and a write that a full disk stops (its file is closed,
so removing it frees the space)."""

from __future__ import annotations

import math
import os
import pickle
from pathlib import Path

import pytest
import torch

from conftest import tiny_trainer
from fishbench.config import validate
from fishbench.errors import CheckpointError
from fishbench.run.checkpoints import check_weights_fit


def test_a_file_that_is_not_a_checkpoint_is_named(tmp_path: Path) -> None:
    """Both backends read a ``.pt`` file through this function (MindSpore's own ``.ckpt``
    reader already turns any parse error into the same message)."""
    from fishbench.backends.pytorch.checkpoint import read_checkpoint

    for i, content in enumerate([b"not a checkpoint\n", pickle.dumps({"a": 1}), b"\x80\x04K"]):
        path = tmp_path / f"{i}.pt"
        path.write_bytes(content)
        with pytest.raises(CheckpointError, match=f"'{path}' is not a fishbench PyTorch"):
            read_checkpoint(path)


def test_weights_that_do_not_fit_are_named_a_few_at_a_time() -> None:
    from omegaconf import OmegaConf

    cfg = validate(OmegaConf.create({"model": {"name": "resnet50"}}))
    model = {f"layer{i}.weight": (8, 8) for i in range(5)} | {"fc.weight": (10, 8)}
    found = {f"layer{i}.weight": (8, 8) for i in range(1, 5)} | {"fc.weight": (4, 8),
                                                                  "head.weight": (1,)}
    with pytest.raises(CheckpointError) as refusal:
        check_weights_fit(Path("x.pt"), cfg, model, found)
    message = str(refusal.value)
    assert "ckpt_path 'x.pt' does not fit model=resnet50" in message
    assert "1 missing (layer0.weight)" in message and "1 not in the model (head.weight)" in message
    assert "fc.weight (4, 8) (the model's (10, 8))" in message
    check_weights_fit(Path("x.pt"), cfg, model, {**model, "moments.fc.weight": (10, 8)},
                      extra_ok=True)
    many = {f"extra{i}": (1,) for i in range(7)}
    with pytest.raises(CheckpointError, match=r"7 not in the model \(extra0, extra1, extra2, \.\.\.\)"):
        check_weights_fit(Path("x.pt"), cfg, model, {**model, **many})


def test_the_torch_trainer_refuses_a_state_dict_of_another_model(tmp_path: Path) -> None:
    """A checkpoint whose meta does not say its model or class count (hand-made, or written by
    another tool) still cannot load into the wrong model."""
    from fishbench.backends.pytorch.checkpoint import write_checkpoint
    from fishbench.backends.pytorch.trainer import TorchTrainer

    trainer = tiny_trainer(TorchTrainer)
    state = trainer.model.state_dict()
    head = [k for k in state if k.endswith("weight")][-1]
    state = {**state, head: torch.zeros(7, *state[head].shape[1:]), "extra.bias": torch.zeros(2)}
    path = tmp_path / "other.pt"
    write_checkpoint(path, {"meta": {"epoch": 1}, "state_dict": state})
    with pytest.raises(CheckpointError, match=rf"'{path}' does not fit model=fishnet99 with 4 "
                                              rf"classes.*extra\.bias.*{head} \(7, "):
        trainer.load_checkpoint(path, full=False)


def test_the_torch_trainer_sees_an_infinite_batchnorm_statistic_and_restores_its_rng(
        tmp_path: Path) -> None:
    from fishbench.backends.pytorch.trainer import TorchTrainer
    from fishbench.run.checkpoints import Progress, checkpoint_meta
    from fishbench.run.schedule import LRSchedule

    trainer = tiny_trainer(TorchTrainer)
    path = tmp_path / "last.pt"
    meta = checkpoint_meta(trainer, Progress(1, 2), 0.0, LRSchedule(trainer.cfg, 2))
    trainer.save_checkpoint(path, meta, trainer.rank_rng_states())
    drawn = torch.rand(5)
    assert trainer.load_checkpoint(path, full=True)["epoch"] == 1
    assert torch.equal(torch.rand(5), drawn)  # the RNG is back where the checkpoint was saved
    assert trainer.weights_finite()
    batchnorm = [m for m in trainer.model.modules() if isinstance(m, torch.nn.BatchNorm2d)][-1]
    batchnorm.running_var[0] = math.inf
    assert not trainer.weights_finite()


def open_files(name: str) -> list[str]:
    links = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            links.append(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:  # the listing's own descriptor, closed meanwhile
            continue
    return [link for link in links if name in link]


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux)")
def test_a_checkpoint_write_that_fills_the_disk_closes_its_file() -> None:
    """torch's own file writer stays open while its error is alive (it is until the run has
    recorded the failure), and a removed file's blocks are freed only when it is closed."""
    from fishbench.backends.pytorch.checkpoint import write_checkpoint

    with pytest.raises(OSError, match="No space left on device") as failure:
        write_checkpoint(Path("/dev/full"), {"w": torch.zeros(100_000)})
    assert failure.value is not None and open_files("/dev/full") == []
