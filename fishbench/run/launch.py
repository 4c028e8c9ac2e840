"""World size > 1: start the workers with the framework's own launcher, in this run's dir.

PyTorch workers are started by torch's elastic agent (the engine behind ``torchrun``); MindSpore
workers by ``msrun``. Workers never re-run Hydra: each one loads the resolved config that this
process wrote into the run dir and calls :func:`fishbench.run.app.run` with its rank.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import sys
import uuid
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from fishbench.run.checkpoints import CHECKPOINT_DIR
from fishbench.config import RunConfig, WorldConfig
from fishbench.errors import FishbenchError, RunInterrupted
from fishbench.run.records import HYDRA_DIR

log = logging.getLogger("fishbench")
WORKER_CONFIG = "worker_config.yaml"  # inside the run's .hydra/ dir


class LaunchError(FishbenchError):
    """The workers could not be started, could not meet, or one of them died."""


def worker_config_path(run_dir: Path) -> Path:
    return Path(run_dir) / HYDRA_DIR / WORKER_CONFIG


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
    """How to continue the run in ``run_dir`` (or, before its first checkpoint, that one must
    start it again)."""
    if not any((Path(run_dir) / CHECKPOINT_DIR).glob("last.*")):
        return "No checkpoint was saved yet (one is saved after each epoch): start the run again."
    return (f"The last checkpoint in {run_dir}/{CHECKPOINT_DIR} stays usable: continue with the same "
            f"command plus `resume=true hydra.run.dir={run_dir}`.")


def launch(config: RunConfig, cfg: DictConfig, run_dir: Path) -> None:
    """Run ``world.nproc_per_node`` workers of this node and wait for them."""
    path = worker_config_path(run_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(cfg, path, resolve=True)
    port = master_port(config.world)
    log.info("launching %d worker(s) on node %d of %d (master %s:%d, backend %s)",
             config.world.nproc_per_node, config.world.node_rank, config.world.nnodes,
             config.world.master_addr, port, config.backend.name)
    if config.backend.name == "pytorch":
        _torch_elastic(config.world, port, run_dir)
    else:
        _msrun(config.world, port, run_dir)


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


def _torch_elastic(world: WorldConfig, port: int, run_dir: Path) -> None:
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    endpoint = f"{world.master_addr}:{port}"
    launch_config = LaunchConfig(
        min_nodes=world.nnodes, max_nodes=world.nnodes, nproc_per_node=world.nproc_per_node,
        run_id=uuid.uuid4().hex, rdzv_backend="static", rdzv_endpoint=endpoint,
        rdzv_configs={"rank": world.node_rank, "timeout": world.timeout_s}, max_restarts=0,
        monitor_interval=1, start_method="spawn")
    try:
        elastic_launch(launch_config, sys.executable)("-m", "fishbench.run.worker", str(run_dir))
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


def _msrun(world: WorldConfig, port: int, run_dir: Path) -> None:
    msrun = shutil.which("msrun")
    if msrun is None:
        raise LaunchError("world size > 1 with backend=mindspore needs MindSpore's `msrun` on "
                          "PATH (it ships with the mindspore package). Install mindspore.")
    worker = Path(__file__).with_name("worker.py")
    cmd = [msrun, f"--worker_num={world.size}", f"--local_worker_num={world.nproc_per_node}",
           f"--master_addr={world.master_addr}", f"--master_port={port}",
           f"--node_rank={world.node_rank}", f"--log_dir={run_dir / 'msrun_logs'}",
           "--join=True", f"--cluster_time_out={world.timeout_s}", str(worker), str(run_dir)]
    quiet = {"GLOG_v": os.environ.get("GLOG_v", "2")}  # MindSpore's own INFO lines off
    proc = subprocess.Popen(cmd, env={**os.environ, **quiet})
    try:
        code = proc.wait()
    except RunInterrupted as err:  # pass SIGINT/SIGTERM on to msrun, which stops its workers
        proc.send_signal(err.signum)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
        raise
    if code != 0:
        raise LaunchError(
            f"msrun exited with code {code}: a worker failed or the cluster did not form within "
            f"world.timeout_s={world.timeout_s} s (master {world.master_addr}:{port}). Worker "
            f"logs: {run_dir}/rank*.log and {run_dir}/msrun_logs/. {resume_hint(run_dir)}"
        )
