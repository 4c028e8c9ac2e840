"""Workers of a MindSpore run: ``msrun`` starts them, each joins the cluster it set up."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
from pathlib import Path

from fishbench.config import RunConfig, WorldConfig
from fishbench.errors import RunInterrupted
from fishbench.run.launch import WORKER_MODULE, LaunchError, resume_hint


def msrun_launch_workers(world: WorldConfig, port: int, run_dir: Path) -> None:
    """Start this node's workers with ``msrun``, which ships with MindSpore."""
    msrun = shutil.which("msrun")
    if msrun is None:
        raise LaunchError("world size > 1 with backend=mindspore needs MindSpore's `msrun` on "
                          "PATH (it ships with the mindspore package). Install mindspore.")
    worker = Path(importlib.util.find_spec(WORKER_MODULE).origin)
    cmd = [msrun, f"--worker_num={world.size}", f"--local_worker_num={world.nproc_per_node}",
           f"--master_addr={world.master_addr}", f"--master_port={port}",
           f"--node_rank={world.node_rank}", f"--log_dir={run_dir / 'msrun_logs'}",
           "--join=True", f"--cluster_time_out={world.timeout_s}", str(worker), str(run_dir),
           str(world.node_rank)]
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


def join_cluster(cfg: RunConfig) -> tuple[int, int, int]:
    """Join the cluster that ``msrun`` set up and train data-parallel (gradients averaged):
    returns (rank, world size, local rank)."""
    import mindspore as ms
    from mindspore.communication import get_group_size, get_local_rank, get_rank, init

    from fishbench.backends.mindspore.device import configure

    configure(cfg)  # the device target must be set before init()
    init()
    ms.set_auto_parallel_context(parallel_mode=ms.ParallelMode.DATA_PARALLEL,
                                 gradients_mean=True)
    return get_rank(), get_group_size(), get_local_rank()


def leave_cluster() -> None:
    from mindspore.communication import release

    release()
