"""Workers of a PyTorch run: torch's elastic agent starts them, each joins the process group."""

from __future__ import annotations

import datetime
import os
import sys
from pathlib import Path

from fishbench.config import RunConfig, WorldConfig
from fishbench.errors import RunInterrupted
from fishbench.run.cores import cpu_share
from fishbench.run.launch import WORKER_MODULE, LaunchError, resume_hint

DIST_BACKENDS = {"cpu": "gloo", "gpu": "nccl", "ascend": "hccl"}


def elastic_launch_workers(world: WorldConfig, port: int, run_dir: Path) -> None:
    """Start this node's workers with torch's elastic agent (the engine behind ``torchrun``)."""
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    endpoint = f"{world.master_addr}:{port}"
    launch_config = LaunchConfig(
        min_nodes=world.nnodes, max_nodes=world.nnodes, nproc_per_node=world.nproc_per_node,
        run_id=rendezvous_id(endpoint), rdzv_backend="static", rdzv_endpoint=endpoint,
        rdzv_configs={"rank": world.node_rank, "timeout": world.timeout_s}, max_restarts=0,
        monitor_interval=1, start_method="spawn")
    try:
        elastic_launch(launch_config, sys.executable)("-m", WORKER_MODULE, str(run_dir),
                                                     str(world.node_rank))
    except SignalException as err:  # the agent has passed the signal on to the workers
        raise RunInterrupted(int(err.sigval)) from None
    except ChildFailedError as err:
        rank, failure = err.get_first_failure()
        raise LaunchError(
            f"Worker rank {rank} failed (exit code {failure.exitcode}); the other workers were "
            f"stopped. Its log is {run_dir}/rank{rank}.log. {resume_hint(run_dir)}"
        ) from None
    except Exception as err:  # rendezvous: the master cannot be reached in time
        raise LaunchError(
            f"The workers of node {world.node_rank} could not meet the master at {endpoint} "
            f"within world.timeout_s={world.timeout_s} s ({type(err).__name__}: {err}). Start "
            f"node 0 with the same world.master_addr/world.master_port, check that this host "
            "can reach that address and port, or raise world.timeout_s."
        ) from None


def rendezvous_id(endpoint: str) -> str:
    """The rendezvous id every node's agent derives alike from the master's address and port
    (the agents' keys in the master's store carry it: a per-node id and they never meet)."""
    return f"fishbench-{endpoint}"


def join_process_group(cfg: RunConfig) -> tuple[int, int, int]:
    """Join the process group set up by torch's elastic agent: (rank, world size, local rank)."""
    import torch
    import torch.distributed as dist

    from fishbench.backends.pytorch.device import import_torch_npu

    if cfg.device.name == "ascend":
        import_torch_npu()  # registers the npu device and the hccl backend
    local_workers = int(os.environ["LOCAL_WORLD_SIZE"])
    torch.set_num_threads(cpu_share(local_workers))  # as torchrun does, jobs at once counted
    dist.init_process_group(DIST_BACKENDS[cfg.device.name],
                            timeout=datetime.timedelta(seconds=int(cfg.world.timeout_s)))
    return dist.get_rank(), dist.get_world_size(), int(os.environ["LOCAL_RANK"])


def leave_process_group() -> None:
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()
