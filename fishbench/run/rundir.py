"""Who may write into a run dir: one command at a time, and only for the run that is in it.

A run dir belongs to the run whose ``metrics.json`` it holds, whatever its status (running,
interrupted, failed, completed): only ``resume=true`` may train there again, and nothing else
may write there. The command's process holds an exclusive lock on :data:`LOCK_FILE` in the dir
for the whole job. :class:`RunDirOwner`, a Hydra callback, takes it and makes these checks before
Hydra writes ``.hydra/`` or opens the run's log file, so a refused command changes nothing.

Hydra then rewrites ``.hydra/*.yaml`` for the command it runs; a command that ends before it has
saved a new checkpoint puts back what it replaced (:meth:`RunDirClaim.restore`). Sweeps own their
job dirs through the sweep's own lock (:mod:`fishbench.sweeps.resume`), so only single runs
claim a dir; in a run over several nodes the first node's process claims it.
"""

from __future__ import annotations

import fcntl
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from fishbench.errors import ConfigError, FishbenchError
from fishbench.run.checkpoints import CHECKPOINT_DIR
from fishbench.run.records import (HISTORY_FILE, HYDRA_DIR, HYDRA_FILES, METRICS_FILE,
                                   TEMP_GLOB, TENSORBOARD_DIR, atomic_write_bytes)

LOCK_FILE = ".fishbench.lock"  # held (flock) by the process that runs a command in the dir
RESTORED_FILES = (HISTORY_FILE, *(f"{HYDRA_DIR}/{name}" for name in HYDRA_FILES))

_claims: dict[Path, RunDirClaim] = {}  # the dirs this process holds, by resolved path


@dataclass
class RunDirClaim:
    """The lock on a run dir, and its run's files as they were before this command."""

    run_dir: Path
    lock: IO[bytes]
    files: dict[str, bytes]  # metrics.json, history.csv, .hydra/'s files as found
    checkpoints: dict[str, tuple[int, int]]
    event_files: set[str] = field(default_factory=set)

    @property
    def status(self) -> str | None:
        """The status of the run the dir held (``unreadable`` for a damaged metrics.json);
        None for a dir without a run."""
        if METRICS_FILE not in self.files:
            return None
        try:
            status = json.loads(self.files[METRICS_FILE]).get("status")
        except (ValueError, AttributeError):
            return "unreadable"
        return str(status)

    def check_command(self, task: Any, resume: Any) -> None:
        """Refuse anything but ``resume=true`` training in a dir that holds a run."""
        if self.status is None or (task == "train" and resume is True):
            return
        further = ("to train this run further, pass resume=true (with a larger epochs once it "
                   "completed)" if self.checkpoints else "it saved no checkpoint to resume "
                   "from: to start it again here, delete the dir first")
        raise ConfigError(
            f"hydra.run.dir '{self.run_dir}' holds a {self.status} run: this command "
            f"(task={task}, resume={str(resume).lower()}) would replace its files, so nothing "
            f"was written. Leave hydra.run.dir unset (a new dir) or choose another one; {further}."
        )

    def trained_further(self) -> bool:
        """Whether this command saved a checkpoint (then the files describe the new state)."""
        return checkpoint_stamps(self.run_dir) != self.checkpoints

    def restore(self) -> None:
        """Put back ``history.csv`` and ``.hydra/``'s files as they were (and ``metrics.json``
        for a completed run): those this command wrote anew are removed, as are the TensorBoard
        event files it added."""
        names = RESTORED_FILES + ((METRICS_FILE,) if self.status == "completed" else ())
        for name in names:
            if name in self.files:
                atomic_write_bytes(self.run_dir / name, self.files[name])
            else:
                (self.run_dir / name).unlink(missing_ok=True)
        for path in sorted(event_files(self.run_dir) - self.event_files):
            (self.run_dir / path).unlink(missing_ok=True)

    def release(self) -> None:
        _claims.pop(self.run_dir.resolve(), None)
        self.lock.close()


def claim_run_dir(run_dir: Path, task: Any, resume: Any) -> RunDirClaim:
    """Lock ``run_dir`` (created if missing) for this process and check that the command may
    write there; :class:`FishbenchError` naming the dir and the fix otherwise."""
    lock = take_lock(run_dir)
    try:
        found = {name: (run_dir / name).read_bytes()
                 for name in (METRICS_FILE, *RESTORED_FILES) if (run_dir / name).is_file()}
        claim = RunDirClaim(run_dir, lock, found, checkpoint_stamps(run_dir),
                            event_files(run_dir))
        claim.check_command(task, resume)
    except BaseException:
        lock.close()
        raise
    _claims[run_dir.resolve()] = claim
    return claim


def take_lock(run_dir: Path) -> IO[bytes]:
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        lock = open(run_dir / LOCK_FILE, "ab")  # noqa: SIM115  (held for the whole job)
    except OSError as err:
        raise FishbenchError(
            f"hydra.run.dir '{run_dir}' cannot be written ({err.strerror or err}): a run "
            "writes its metrics, checkpoints and logs there. Choose a dir you can write to "
            "(hydra.run.dir=<dir>), or fix the permissions or mount of this one."
        ) from None
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        raise FishbenchError(
            f"hydra.run.dir '{run_dir}' is in use by another fishbench command, which writes "
            "its files there. Wait for that command to end (then resume=true continues its "
            "run), or choose another hydra.run.dir (or leave it unset: a new dir)."
        ) from None
    return lock


def held_claim(run_dir: Path) -> RunDirClaim | None:
    """This process's claim on ``run_dir``; None when it holds none (a sweep's job, a node
    other than the first, a task function called without the callback)."""
    return _claims.get(Path(run_dir).resolve())


def checkpoint_stamps(run_dir: Path) -> dict[str, tuple[int, int]]:
    """Inode and modification time of every checkpoint file: a saved checkpoint changes them.
    Temporary files are left out: removing those that a killed write left saves nothing."""
    folder = run_dir / CHECKPOINT_DIR
    files = sorted(p for p in folder.iterdir() if not p.match(TEMP_GLOB)) if folder.is_dir() else []
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in files if p.is_file()}


def event_files(run_dir: Path) -> set[str]:
    folder = run_dir / TENSORBOARD_DIR
    return {str(p.relative_to(run_dir)) for p in folder.rglob("*") if p.is_file()} \
        if folder.is_dir() else set()


class RunDirOwner(Callback):
    """Hydra callback (``conf/hydra/default.yaml``): claims a single run's dir before Hydra
    writes into it; a refusal prints its paragraph and exits 2."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        if OmegaConf.select(config, "world.node_rank", default=0) != 0:
            return  # the first node's process owns the dir; the others join its run
        HydraConfig.instance().set_config(config)  # as Hydra's run_job does: ${hydra:...} resolves
        try:
            claim_run_dir(Path(str(config.hydra.run.dir)).absolute(),
                          OmegaConf.select(config, "task"), OmegaConf.select(config, "resume"))
        except FishbenchError as err:
            print(f"fishbench: error: {err}", file=sys.stderr)
            sys.exit(2)
