"""The PyTorch backend (CPU, CUDA GPUs, Ascend NPUs through torch_npu)."""

from __future__ import annotations

from fishbench.config import RunConfig
from fishbench.data.spec import DataSpec


def create_trainer(cfg: RunConfig, spec: DataSpec, rank: int = 0, world_size: int = 1,
                   local_rank: int = 0):
    from fishbench.backends.pytorch.trainer import TorchTrainer

    return TorchTrainer(cfg, spec, rank, world_size, local_rank)


def check_runtime(cfg: RunConfig, local_rank: int = 0) -> None:
    """Stop before any work if the chosen device or its runtime is missing."""
    from fishbench.backends.pytorch.device import select_device

    select_device(cfg.device, local_rank, cfg.world.size)
