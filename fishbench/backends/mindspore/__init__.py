"""The MindSpore backend (CPU, GPU with CUDA 11, Ascend with CANN)."""

from __future__ import annotations

from fishbench.config import RunConfig
from fishbench.data.spec import DataSpec


def create_trainer(cfg: RunConfig, spec: DataSpec, rank: int = 0, world_size: int = 1,
                   local_rank: int = 0):
    from fishbench.backends.mindspore.trainer import MindSporeTrainer

    return MindSporeTrainer(cfg, spec, rank, world_size, local_rank)


def check_runtime(cfg: RunConfig, local_rank: int = 0) -> None:
    """Stop before any work if the chosen device or its runtime is missing."""
    from fishbench.backends.mindspore.device import check_device

    check_device(cfg)
