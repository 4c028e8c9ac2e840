"""Checkpoints, for every backend: where they go, when to save, how many to keep, what a run
saves beside the weights, the checks on loading one, and loading any backend's file.

A backend supplies the file suffix, its trainer's ``save_checkpoint``/``load_checkpoint`` of its
own files, and ``read_weights`` of them for the other backends; every file is written atomically,
so an interrupted save never replaces a good checkpoint. Nothing here imports a framework.
"""

from __future__ import annotations

import os
import random
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from fishbench.backends import backend_of_checkpoint
from fishbench.backends.base import Trainer
from fishbench.config import RunConfig
from fishbench.errors import CheckpointError, WriteFailed
from fishbench.run.records import atomic_write
from fishbench.run.schedule import LRSchedule

CHECKPOINT_DIR = "checkpoints"


@dataclass
class Progress:
    """Where training stands; saved in every checkpoint and restored by ``resume=true``."""

    epoch: int = 0  # epochs completed
    global_step: int = 0
    best_top1: float = 0.0
    best_epoch: int = 0
    elapsed_s: float = 0.0  # run time of the earlier parts of a resumed run
    saved_epoch: int | None = None  # the epoch of checkpoints/last; None before the first save
    schedule: dict[str, Any] | None = None  # the saved LRSchedule state of a resumed run


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

        A write that fails (a full disk, a lost mount) raises :class:`WriteFailed` once its
        temporary file is closed and removed; the checkpoints saved before are left as they
        were."""
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
            raise WriteFailed(
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


def load_checkpoint_into(trainer: Trainer, path: Path, own_suffix: str, full: bool
                         ) -> dict[str, Any]:
    """Load the checkpoint ``path`` of any backend into ``trainer``; return its meta.

    A file of the running backend (suffix ``own_suffix``, or a suffix no backend claims) goes to
    ``trainer.load_checkpoint``; with ``full`` it restores the training state too. Another
    backend's file gives its weights only, read by that backend and named as torch's state dict.
    """
    writer = backend_of_checkpoint(path)
    if writer is None or writer.checkpoint_suffix == own_suffix:
        return trainer.load_checkpoint(path, full)
    if full:
        raise CheckpointError(
            f"resume=true continues a run of the same backend, but '{path}' was written by the "
            f"other one. Resume with the backend that wrote it, or start a new run from its "
            f"weights with ckpt_path={path} resume=false."
        )
    weights, meta = writer.read_weights(path, trainer.cfg.model.name)
    check_meta(meta, trainer.cfg, path)
    try:
        trainer.load_weights(weights)
    except ValueError as err:
        raise CheckpointError(f"ckpt_path '{path}': {err}. Was it written by another version "
                              "of fishbench?") from None
    return meta


def check_meta(meta: dict[str, Any], cfg: RunConfig, path: Path) -> None:
    """Stop with a clear message when a checkpoint belongs to another model or class count."""
    model, classes = meta.get("model"), meta.get("num_classes")
    if model is not None and model != cfg.model.name:
        raise CheckpointError(
            f"ckpt_path '{path}' holds a {model} checkpoint, but model={cfg.model.name}. "
            f"Run with model={model} or pass a {cfg.model.name} checkpoint."
        )
    if classes is not None and classes != cfg.model.num_classes:
        raise CheckpointError(
            f"ckpt_path '{path}' was trained for {classes} classes, but the run has "
            f"{cfg.model.num_classes}. Use a dataset with {classes} classes or another checkpoint."
        )


def check_weights_fit(path: Path, cfg: RunConfig, expected: dict[str, tuple[int, ...]],
                      found: dict[str, tuple[int, ...]], extra_ok: bool = False) -> None:
    """Stop with a clear message when the weights ``found`` in checkpoint ``path`` (name ->
    shape) do not fit the model's ``expected``: names it lacks, names the model lacks (unless
    ``extra_ok``), other shapes; the first few of each."""
    missing = [k for k in expected if k not in found]
    unexpected = [] if extra_ok else [k for k in found if k not in expected]
    reshaped = [f"{k} {tuple(found[k])} (the model's {tuple(expected[k])})" for k in expected
                if k in found and tuple(found[k]) != tuple(expected[k])]
    problems = [f"{len(keys)} {what} ({', '.join(keys[:3])}{', ...' if len(keys) > 3 else ''})"
                for what, keys in (("missing", missing), ("not in the model", unexpected),
                                   ("of another shape", reshaped)) if keys]
    if problems:
        raise CheckpointError(
            f"ckpt_path '{path}' does not fit model={cfg.model.name} with "
            f"{cfg.model.num_classes} classes: of its weights, {'; '.join(problems)}. Pass a "
            f"checkpoint of {cfg.model.name} trained on this dataset, or run with the model and "
            "dataset it was trained with."
        )


def check_same_world(meta: dict[str, Any], batch_size: int, world_size: int, path: Path) -> None:
    """Stop with a clear message when the run of checkpoint ``path`` had another batch size or
    world size: a resumed run counts its steps, and so its learning rates, in those."""
    saved = (meta.get("batch_size", batch_size), meta.get("world_size", world_size))
    if saved != (batch_size, world_size):
        raise CheckpointError(
            f"'{path}' was trained with batch_size={saved[0]} on {saved[1]} process(es), this "
            f"run has batch_size={batch_size} on {world_size}. resume=true continues with the "
            "same batch size and world (progress and the learning-rate schedule count its "
            f"steps): pass batch_size={saved[0]} and world={saved[1]} (world.nnodes x "
            f"world.nproc_per_node = {saved[1]}), or start a new run from its weights with "
            f"ckpt_path={path} resume=false."
        )


def checkpoint_meta(trainer: Trainer, progress: Progress, elapsed_s: float,
                    schedule: LRSchedule) -> dict[str, Any]:
    """What every checkpoint records beside the weights, in plain values: the run, where it
    stands and its learning-rate schedule."""
    cfg = trainer.cfg
    return {"model": cfg.model.name, "num_classes": cfg.model.num_classes,
            "backend": cfg.backend.name, "epoch": progress.epoch,
            "global_step": progress.global_step, "best_top1": float(progress.best_top1),
            "best_epoch": progress.best_epoch, "batch_size": cfg.batch_size,
            "world_size": trainer.world_size, "steps_per_epoch": trainer.steps_per_epoch,
            "elapsed_s": round(elapsed_s, 3), "schedule": schedule.state_dict()}


def resumed_progress(trainer: Trainer, meta: dict[str, Any], path: Path) -> Progress:
    """Where the run of a loaded checkpoint stands; stops with a clear message when this run
    cannot continue it exactly: another batch size, world size or epoch length (the step count
    and the learning-rate schedule are counted in steps of the original global batch), nothing
    left to train, or weights that are not finite."""
    cfg, epoch = trainer.cfg, meta["epoch"]
    check_same_world(meta, cfg.batch_size, trainer.world_size, path)
    steps = meta.get("steps_per_epoch", meta["global_step"] // epoch if epoch else None)
    if steps not in (None, trainer.steps_per_epoch):
        raise CheckpointError(
            f"'{path}' was trained with {steps} steps per epoch, this run has "
            f"{trainer.steps_per_epoch} (max_steps_per_epoch, batch_size or the dataset "
            "changed). Resume with the settings the run started with, or start a new run from "
            f"its weights with ckpt_path={path} resume=false."
        )
    if epoch >= cfg.epochs:
        raise CheckpointError(
            f"'{path}' has already trained {epoch} epoch(s) and epochs={cfg.epochs}: nothing "
            f"to resume. Pass a larger epochs (e.g. epochs={epoch + 1}) to train it further."
        )
    if not trainer.weights_finite():
        raise CheckpointError(
            f"'{path}' holds NaN or infinite parameters or buffers: training from it diverges "
            "at once. Resume from an earlier checkpoint (checkpoints/epoch_*) or start again."
        )
    return Progress(epoch, meta["global_step"], meta["best_top1"], meta["best_epoch"],
                    meta.get("elapsed_s", 0.0), saved_epoch=epoch, schedule=meta.get("schedule"))


def own_rng_states(saved: Any, rank: int) -> Any:
    """This rank's entry of a checkpoint's per-rank RNG states (a single entry in checkpoints
    written before they were per rank). Another world size is refused after loading, so any
    rank gets an entry here."""
    states = saved if isinstance(saved, list) else [saved]
    return states[rank % len(states)]


def host_rng_states() -> dict[str, Any]:
    """numpy's and Python's global RNG states as plain values (numpy's key array as a list of
    ints), which a checkpoint stores as they are: loading one never unpickles an object."""
    name, keys, position, has_gauss, cached_gaussian = np.random.get_state()
    return {"numpy": [name, keys.tolist(), position, has_gauss, cached_gaussian],
            "python": random.getstate()}


def set_host_rng_states(states: dict[str, Any]) -> None:
    """Restore :func:`host_rng_states` (also from JSON, where its tuples became lists)."""
    name, keys, *rest = states["numpy"]
    np.random.set_state((name, np.array(keys, np.uint32), *rest))
    version, internal, gauss_next = states["python"]
    random.setstate((version, tuple(internal), gauss_next))
