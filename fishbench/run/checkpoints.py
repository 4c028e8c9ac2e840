"""Checkpoint policy shared by both backends: where checkpoints go, when to save, how many to keep.

A backend supplies only the file suffix and a function that writes one checkpoint file; every
file is written atomically, so an interrupted save never replaces a good checkpoint.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Callable

from fishbench.errors import CheckpointError
from fishbench.run.records import atomic_write

CHECKPOINT_DIR = "checkpoints"


class CheckpointPolicy:
    """``last`` after every epoch, ``best`` on a new best top1, ``epoch_NNNN`` every
    ``save_every`` epochs (and the final one), keeping the newest ``keep_max`` of those."""

    def __init__(self, run_dir: Path, suffix: str, save_every: int, keep_max: int) -> None:
        self.dir = Path(run_dir) / CHECKPOINT_DIR
        self.suffix = suffix
        self.save_every = save_every
        self.keep_max = keep_max

    def _link_last(self, tmp: Path) -> None:
        tmp.unlink()
        try:
            os.link(self.last, tmp)
        except OSError:  # a filesystem without hard links
            shutil.copyfile(self.last, tmp)

    def path(self, name: str) -> Path:
        return self.dir / f"{name}{self.suffix}"

    @property
    def last(self) -> Path:
        return self.path("last")

    def save(self, epoch: int, final: bool, is_best: bool, write: Callable[[Path], None]) -> None:
        """Write ``last`` through ``write(tmp_path)``, then link it to the other names due
        (hard links: no extra disk; ``last`` is later replaced, never rewritten in place).

        A write that fails (a full disk, a lost mount) raises :class:`CheckpointError`; the
        checkpoints saved before are left as they were."""
        names = ["best"] if is_best else []
        if epoch % self.save_every == 0 or final:
            names.append(f"epoch_{epoch:04d}")
        target = self.last
        try:
            atomic_write(target, write)
            for name in names:
                target = self.path(name)
                atomic_write(target, self._link_last)
        except (OSError, RuntimeError) as err:  # frameworks wrap a failed write in RuntimeError
            raise CheckpointError(
                f"Could not write the checkpoint {target} of epoch {epoch} ({err}). The "
                f"checkpoints saved before in {self.dir} are intact: free disk space (or fix "
                "the folder), then continue with resume=true."
            ) from None
        for old in sorted(self.dir.glob(f"epoch_*{self.suffix}"))[: -self.keep_max]:
            old.unlink()


def resolve_checkpoint(path: str | Path, suffixes: tuple[str, ...]) -> Path:
    """A checkpoint file from a file path, a run dir, or a run's ``checkpoints/`` dir."""
    p = Path(path).expanduser()
    candidates = [p] if p.is_file() else [
        d / f"last{s}" for d in (p / CHECKPOINT_DIR, p) for s in suffixes
    ]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise CheckpointError(
        f"ckpt_path '{path}' does not exist or holds no checkpoint (looked for "
        f"{', '.join(str(c) for c in candidates)}). Pass a checkpoint file or a run dir that has "
        f"{CHECKPOINT_DIR}/last{suffixes[0]}."
    )
