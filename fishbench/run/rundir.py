"""A run dir across commands: a completed run is never degraded by a later command.

Hydra rewrites ``.hydra/*.yaml`` in the run dir before any fishbench code runs, so a run that
completes keeps copies of them in ``.hydra/completed/`` (:class:`fishbench.run.records.RunRecorder`),
and :class:`CompletedRun` puts them back, with ``metrics.json`` and ``history.csv``, when a later
command in that dir fails or is refused before it has saved a new checkpoint.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from fishbench.run.checkpoints import CHECKPOINT_DIR
from fishbench.config import RunConfig
from fishbench.errors import ConfigError
from fishbench.run.records import (COMPLETED_COPY, HISTORY_FILE, HYDRA_DIR, HYDRA_FILES, METRICS_FILE,
                               TEMP_GLOB, atomic_copy, atomic_write_text)


@dataclass
class CompletedRun:
    """A run dir whose run completed, as found before this command changed anything in it.

    Only ``resume=true`` with a larger ``epochs`` may continue such a run; any command that
    fails before it has saved a new checkpoint puts ``metrics.json``, ``history.csv`` and
    ``.hydra/*.yaml`` back.
    """

    run_dir: Path
    files: dict[str, str]  # metrics.json and history.csv as they were
    checkpoints: dict[str, tuple[int, int]]

    @classmethod
    def find(cls, run_dir: Path) -> CompletedRun | None:
        try:
            text = (run_dir / METRICS_FILE).read_text()
            completed = json.loads(text).get("status") == "completed"
        except (OSError, ValueError, AttributeError):
            return None
        if not completed:
            return None
        history = run_dir / HISTORY_FILE
        files = {METRICS_FILE: text, **({HISTORY_FILE: history.read_text()}
                                        if history.is_file() else {})}
        return cls(run_dir, files, checkpoint_stamps(run_dir))

    def check_command(self, config: RunConfig) -> None:
        if config.task != "train" or not config.resume:
            raise ConfigError(
                f"hydra.run.dir '{self.run_dir}' holds a completed run, which this command "
                f"(task={config.task}, resume={str(config.resume).lower()}) would overwrite. "
                "Leave hydra.run.dir unset (a new dir) or choose another one; to train this run "
                "longer, pass resume=true with a larger epochs."
            )

    def trained_further(self) -> bool:
        return checkpoint_stamps(self.run_dir) != self.checkpoints

    def restore(self) -> None:
        for name, text in self.files.items():
            atomic_write_text(self.run_dir / name, text)
        kept = self.run_dir / HYDRA_DIR / COMPLETED_COPY
        for name in HYDRA_FILES:
            if (kept / name).is_file():
                atomic_copy(kept / name, self.run_dir / HYDRA_DIR / name)


def checkpoint_stamps(run_dir: Path) -> dict[str, tuple[int, int]]:
    """Inode and modification time of every checkpoint file: a saved checkpoint changes them.
    Temporary files are left out: removing those that a killed write left saves nothing."""
    folder = run_dir / CHECKPOINT_DIR
    files = sorted(p for p in folder.iterdir() if not p.match(TEMP_GLOB)) if folder.is_dir() else []
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in files if p.is_file()}
