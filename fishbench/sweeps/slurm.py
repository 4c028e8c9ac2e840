"""Slurm through Hydra's submitit launcher (``hydra/launcher=slurm``): what a job asks of Slurm,
the jobs' states on a cluster without accounting, and when a signalled job is requeued.

The launcher itself (``hydra_plugins/fishbench_sweeps/slurm_launcher.py``) wires these into
submitit; nothing here imports submitit or a framework.
"""

from __future__ import annotations

import functools
import logging
import os
import subprocess
from collections.abc import Iterable
from pathlib import Path

from fishbench.errors import FishbenchError

log = logging.getLogger("fishbench")
GONE = "ENDED"  # the state of a job that Slurm no longer lists (it ended MinJobAge ago)


def slurm_gpus(device: str, nproc_per_node: int) -> int | None:
    """GPUs per node: one per process for ``device=gpu``, none otherwise."""
    return nproc_per_node if device == "gpu" else None


def slurm_cpus(cpu_threads: int | str, nproc_per_node: int, partition: str | None) -> int:
    """CPUs per task: ``device.cpu_threads`` when it is a number; for ``auto`` the partition's
    node split among the node's processes (one job per node)."""
    if cpu_threads != "auto":
        return int(cpu_threads)
    return max(node_cpus(partition) // nproc_per_node, 1)


def node_cpus(partition: str | None) -> int:
    """The CPUs of the partition's smallest node, as ``sinfo`` reports them; this host's cores
    where ``sinfo`` cannot answer (composing a config away from the cluster)."""
    cmd = ["sinfo", "-h", "-o", "%c", *(["-p", partition] if partition else [])]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        out = ""
    counts = [int(word.rstrip("+")) for word in out.split() if word.rstrip("+").isdigit()]
    return min(counts) if counts else os.cpu_count() or 1


@functools.lru_cache(maxsize=1)
def accounting_enabled() -> bool:
    """Whether the cluster keeps job accounting (``sacct`` answers): ``AccountingStorageType``
    of ``scontrol show config`` is not ``accounting_storage/none``."""
    try:
        out = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True,
                             timeout=60).stdout
    except (OSError, subprocess.TimeoutExpired):
        return False
    for line in out.splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "AccountingStorageType":
            return value.strip() not in ("", "accounting_storage/none")
    return False


def queue_states(job_ids: Iterable[str]) -> dict[str, str] | None:
    """``squeue``'s state of each job (``<id>`` or ``<id>_<array index>``); a job that Slurm no
    longer lists is :data:`GONE`. ``None`` when ``squeue`` cannot be asked (no controller)."""
    wanted = sorted(set(job_ids))
    mains = sorted({job.split("_")[0] for job in wanted})
    cmd = ["squeue", "-h", "-r", "-t", "all", "-o", "%i|%T", "-j", ",".join(mains)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if proc.returncode != 0 and "Invalid job id" not in proc.stderr:
        return None
    listed = dict(line.split("|", 1) for line in proc.stdout.splitlines() if "|" in line)
    return {job: listed.get(job, GONE) for job in wanted}


class RequeueLimit(FishbenchError):
    """A signalled job was requeued as often as the launcher allows."""


def check_requeue(restarts: int, limit: int, run_dir: Path, sweep_dir: Path) -> None:
    """Allow one more requeue of a job that Slurm signalled (time limit or pre-emption) after
    ``restarts`` requeues; raise :class:`RequeueLimit` once ``limit`` is reached."""
    if restarts >= limit:
        raise RequeueLimit(
            f"The Slurm job of {run_dir} was signalled before its time limit or pre-emption "
            f"again after {restarts} requeue(s), the most hydra.launcher.max_num_timeout={limit} "
            f"allows, so it was not requeued; the checkpoints of its finished epochs are kept. Raise "
            f"hydra.launcher.timeout_min or hydra.launcher.max_num_timeout, then continue with "
            f"`fishbench resume {sweep_dir}`.")

