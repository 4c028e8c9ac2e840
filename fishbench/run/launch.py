"""World size > 1: start this node's workers in the run's dir, through the backend's launcher.

The backend says how (PyTorch: torch's elastic agent; MindSpore: ``msrun``). Workers never re-run
Hydra: each one loads the resolved config that this process wrote into the run dir and calls
:func:`fishbench.run.app.run` with its rank.
"""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from fishbench.run.checkpoints import CHECKPOINT_DIR
from fishbench.config import RunConfig, WorldConfig
from fishbench.config.resolvers import node_suffix
from fishbench.backends import get_backend
from fishbench.errors import FishbenchError
from fishbench.run.records import HYDRA_DIR

log = logging.getLogger("fishbench")
WORKER_CONFIG = "worker_config.yaml"  # inside the node's Hydra dir (.hydra/ on node 0)
WORKER_MODULE = "fishbench.run.worker"  # each worker runs: python -m WORKER_MODULE RUN_DIR NODE_RANK


class LaunchError(FishbenchError):
    """The workers could not be started, could not meet, or one of them died."""


def worker_config_path(run_dir: Path, node_rank: int) -> Path:
    """The resolved config that node ``node_rank``'s workers load: each node writes its own, so
    nodes sharing the run dir never overwrite each other's."""
    return Path(run_dir) / f"{HYDRA_DIR}{node_suffix(node_rank)}" / WORKER_CONFIG


def master_port(world: WorldConfig) -> int:
    """The configured port; on one node a free one when none is set (concurrent jobs differ)."""
    if world.master_port is not None:
        return world.master_port
    if world.nnodes > 1:
        return 29500
    with socket.socket() as s:
        s.bind((world.master_addr, 0))
        return s.getsockname()[1]


def resume_hint(run_dir: Path) -> str:
    """How to continue the run in ``run_dir``: inside a sweep ``fishbench resume <sweep dir>``;
    alone, the same command with ``resume=true`` (or, before its first checkpoint, again)."""
    sweep_dir = current_sweep_dir()
    if sweep_dir is not None:
        return (f"Continue the sweep, this job included (from its last checkpoint, if one was "
                f"saved), with `fishbench resume {sweep_dir}`.")
    if not any((Path(run_dir) / CHECKPOINT_DIR).glob("last.*")):
        return "No checkpoint was saved yet (one is saved after each epoch): start the run again."
    return (f"The last checkpoint in {run_dir}/{CHECKPOINT_DIR} stays usable: continue with the same "
            f"command plus `resume=true hydra.run.dir={run_dir}`.")


def current_sweep_dir() -> Path | None:
    """The sweep dir of the multirun this process runs a job of; None outside one."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return None
    return Path(HydraConfig.get().sweep.dir)


def launch(config: RunConfig, cfg: DictConfig, run_dir: Path) -> None:
    """Run ``world.nproc_per_node`` workers of this node and wait for them."""
    path = worker_config_path(run_dir, config.world.node_rank)
    path.parent.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(cfg, path, resolve=True)
    port = master_port(config.world)
    log.info("launching %d worker(s) on node %d of %d (master %s:%d, backend %s)",
             config.world.nproc_per_node, config.world.node_rank, config.world.nnodes,
             config.world.master_addr, port, config.backend.name)
    get_backend(config.backend.name).launch_workers(config.world, port, run_dir)


def slurm_worker_env(world: WorldConfig) -> dict[str, str] | None:
    """torch.distributed's variables for a task of Hydra's submitit Slurm launcher started as one
    task per device (``hydra/launcher=slurm``); ``None`` when not under such a launcher.

    Slurm is then the launcher: the task's rank, local rank and the master (the job's first node)
    come from Slurm, and the task runs as a worker itself.
    """
    if os.environ.get("SUBMITIT_EXECUTOR") != "slurm" or int(os.environ.get("SLURM_NTASKS", "1")) == 1:
        return None
    from submitit import JobEnvironment  # installed with hydra-submitit-launcher

    job = JobEnvironment()
    if job.num_tasks != world.size:
        raise LaunchError(
            f"Slurm started {job.num_tasks} tasks, but the world has {world.size} processes "
            f"(world.nnodes={world.nnodes} x world.nproc_per_node={world.nproc_per_node}). Use "
            "hydra/launcher=slurm, which asks Slurm for one task per device of the world."
        )
    return {"RANK": str(job.global_rank), "LOCAL_RANK": str(job.local_rank),
            "WORLD_SIZE": str(world.size), "LOCAL_WORLD_SIZE": str(world.nproc_per_node),
            "MASTER_ADDR": job.hostnames[0], "MASTER_PORT": str(world.master_port or 29500)}
