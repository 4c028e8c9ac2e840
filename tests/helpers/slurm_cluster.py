"""The local Slurm cluster of the tests (``.ci/slurm.sh start``; ``RunIf(slurm_cluster=True)``
skips where there is none): the job ids of a sweep."""

from __future__ import annotations

from pathlib import Path


def sweep_job_ids(sweep_dir: Path) -> list[str]:
    """The Slurm job ids that the submitit launcher submitted for ``sweep_dir``."""
    folder = sweep_dir / ".submitit"
    return sorted({p.name.split("_")[0] for p in folder.iterdir() if p.name[0].isdigit()}) \
        if folder.is_dir() else []
