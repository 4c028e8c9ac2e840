"""The CPU cores of this node, shared among the training processes that run on it at once.

A multirun through a parallel launcher (Hydra's joblib launcher, ``hydra.launcher.n_jobs``) runs
several jobs at once; a world of N runs N processes. Each gets its share of the cores for its
compute threads and loader workers, instead of every process spinning threads on every core.
"""

from __future__ import annotations

import os


def usable_cores() -> int:
    """The cores this process may run on (its affinity), else the host's."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def concurrent_jobs() -> int:
    """How many jobs of this multirun run at once: the joblib launcher's ``n_jobs`` (``-1``: one
    per core); 1 outside a multirun or under a launcher that runs one job at a time here."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return 1
    launcher = HydraConfig.get().launcher
    if "joblib" not in str(launcher.get("_target_", "")):
        return 1
    n_jobs = int(launcher.get("n_jobs") or 1)
    return usable_cores() if n_jobs < 0 else max(n_jobs, 1)


def cpu_share(processes_per_job: int = 1) -> int:
    """Cores for one process: the usable cores over the processes on the node at once (>= 1)."""
    return max(usable_cores() // (processes_per_job * concurrent_jobs()), 1)


def cpu_threads(setting: int | str, processes_per_job: int) -> int:
    """``device.cpu_threads``: a number as given; ``auto`` is :func:`cpu_share`."""
    return cpu_share(processes_per_job) if setting == "auto" else int(setting)
