"""Reading runs from disk: a *run dir* holds ``metrics.json`` or Hydra's ``.hydra/``; a *sweep
dir* is a folder whose subfolders are run dirs. Reading never fails on a run's missing or broken
files: the run keeps its place and says so in its status. A run's config, overrides and job number
come from its config record (:mod:`fishbench.run.config_record`)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fishbench.compare.errors import CompareError
from fishbench.run.config_record import read_config_record
from fishbench.run.records import HYDRA_DIR, METRICS_FILE, read_history

COMPLETED = "completed"


@dataclass
class Run:
    """One run dir as read from disk."""

    path: Path
    metrics: dict[str, Any]  # metrics.json; always has "status"
    config: dict[str, Any]  # .hydra/config.yaml as dotted keys, interpolations as written
    overrides: dict[str, Any]  # .hydra/overrides.yaml: key -> typed value
    history: list[dict[str, float]]  # history.csv
    job: int | None  # hydra.job.num of a multirun job

    @property
    def status(self) -> str:
        return str(self.metrics["status"])

    def lookup(self, key: str) -> Any:
        """``key`` in the config, else the metrics, else the overrides (``None`` if absent)."""
        for source in (self.config, self.metrics, self.overrides):
            if key in source:
                return source[key]
        return None

    def keys(self) -> set[str]:
        return {*self.config, *self.metrics, *self.overrides}


def is_run_dir(path: Path) -> bool:
    return (path / METRICS_FILE).is_file() or (path / HYDRA_DIR).is_dir()


def read_metrics(path: Path) -> dict[str, Any]:
    """The run's ``metrics.json``; always has ``status`` (``unknown`` when there is no file)."""
    file = path / METRICS_FILE
    if not file.is_file():
        return {"status": "unknown"}  # Hydra started the job, but it wrote nothing yet
    try:
        metrics = json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        return {"status": "unreadable", "error": f"{file}: {err}"}
    if not isinstance(metrics, dict):
        return {"status": "unreadable",
                "error": f"{file}: holds a JSON {type(metrics).__name__}, not an object"}
    metrics.setdefault("status", "unknown")
    return metrics


def read_run(path: Path) -> Run:
    """Read one run dir; missing files give empty parts, never an exception."""
    path = Path(path)
    record = read_config_record(path)
    return Run(path=path, metrics=read_metrics(path), config=record.config,
               overrides=record.overrides, history=read_history(path), job=record.job)


def _natural_key(path: Path) -> tuple[int, int, str]:
    return (0, int(path.name), "") if path.name.isdigit() else (1, 0, path.name)


def sweep_run_dirs(path: Path) -> list[Path]:
    """The run dirs directly inside ``path``, job order (0, 1, ..., 10)."""
    return sorted((p for p in path.iterdir() if p.is_dir() and is_run_dir(p)), key=_natural_key)


def collect_runs(paths: Iterable[str | Path]) -> list[Run]:
    """Read every run named by ``paths``: run dirs and sweep dirs, in any mix (duplicates once)."""
    run_dirs: dict[Path, None] = {}
    for raw in paths:
        path = Path(raw)
        found = [path] if is_run_dir(path) else sweep_run_dirs(path) if path.is_dir() else []
        if not found:
            raise CompareError(
                f"'{raw}' is neither a run dir (a folder with {METRICS_FILE} or {HYDRA_DIR}/, as "
                "written by `python run.py`) nor a sweep dir (a folder whose subfolders are run "
                "dirs, as written by `python run.py -m`)"
                + ("" if path.exists() else ": it does not exist")
                + ". Pass run or sweep directories, e.g. outputs/sweeps/<date>/<time>_<name>_<uid>."
            )
        run_dirs.update((p.resolve(), None) for p in found)
    return [read_run(p) for p in run_dirs]
