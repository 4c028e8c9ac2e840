"""The PyTorch backend (CPU, CUDA GPUs, Ascend NPUs through torch_npu)."""

from __future__ import annotations

import datetime
import os

import torch
import torch.distributed as dist

from fishbench.backends.pytorch.device import DIST_BACKENDS, check_device, import_torch_npu
from fishbench.config import RunConfig
from fishbench.data.spec import DataSpec


def check_runtime(cfg: RunConfig) -> None:
    """Stop before any work if the chosen device, its runtime or enough devices are missing."""
    check_device(cfg.device, cfg.world.nproc_per_node)


def create_trainer(cfg: RunConfig, spec: DataSpec, rank: int = 0, world_size: int = 1,
                   local_rank: int = 0):
    from fishbench.backends.pytorch.trainer import TorchTrainer

    return TorchTrainer(cfg, spec, rank, world_size, local_rank)


def init_distributed(cfg) -> tuple[int, int, int]:
    """Join the process group set up by torch's elastic agent: (rank, world size, local rank)."""
    if cfg.device.name == "ascend":
        import_torch_npu()  # registers the npu device and the hccl backend
    local_workers = int(os.environ["LOCAL_WORLD_SIZE"])
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // local_workers))  # as torchrun does
    dist.init_process_group(DIST_BACKENDS[cfg.device.name],
                            timeout=datetime.timedelta(seconds=int(cfg.world.timeout_s)))
    return dist.get_rank(), dist.get_world_size(), int(os.environ["LOCAL_RANK"])


def shutdown_distributed() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()
