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


def init_distributed(cfg) -> tuple[int, int, int]:
    """Join the cluster that ``msrun`` set up and train data-parallel (gradients averaged):
    returns (rank, world size, local rank)."""
    import mindspore as ms
    from mindspore.communication import get_group_size, get_local_rank, get_rank, init

    from fishbench.backends.mindspore.device import configure
    from fishbench.config import validate

    config = validate(cfg)
    configure(config)  # the device target must be set before init()
    init()
    ms.set_auto_parallel_context(parallel_mode=ms.ParallelMode.DATA_PARALLEL,
                                 gradients_mean=True)
    return get_rank(), get_group_size(), get_local_rank()


def shutdown_distributed() -> None:
    from mindspore.communication import release

    release()
