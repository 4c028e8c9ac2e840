"""The local Slurm cluster of the tests (``.ci/slurm.sh start``): a skip marker where there is
none, and the job ids of a sweep."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest


def _why_no_slurm() -> str | None:
    if shutil.which("sbatch") is None:
        return "needs Slurm: sbatch is not on PATH (`.ci/slurm.sh start` installs and starts one)"
    try:
        proc = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True,
                              timeout=30)
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"Slurm does not answer: {err}"
    if proc.returncode != 0 or not {"idle", "mix", "alloc"} & set(proc.stdout.split()):
        return f"Slurm has no usable node ({(proc.stdout + proc.stderr).strip() or 'no output'})"
    return None


WHY_NO_SLURM = _why_no_slurm()
requires_slurm = pytest.mark.skipif(WHY_NO_SLURM is not None, reason=WHY_NO_SLURM or "")


def sweep_job_ids(sweep_dir: Path) -> list[str]:
    """The Slurm job ids that the submitit launcher submitted for ``sweep_dir``."""
    folder = sweep_dir / ".submitit"
    return sorted({p.name.split("_")[0] for p in folder.iterdir() if p.name[0].isdigit()}) \
        if folder.is_dir() else []
