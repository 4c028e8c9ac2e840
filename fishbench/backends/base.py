"""The contract between the hall (config, run, sweeps, compare) and a framework's backend.

The hall never imports a framework: it asks the chosen :class:`Backend` (from
:func:`fishbench.backends.get_backend`) and drives the :class:`Trainer` it creates. A backend
module is framework-free at import time; it imports its framework inside the methods, so only the
chosen backend's framework is ever loaded.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ClassVar

import numpy as np

if TYPE_CHECKING:
    from fishbench.config import RunConfig, WorldConfig
    from fishbench.data.spec import DataSpec
    from fishbench.run.engine import StepLogger
    from fishbench.run.metrics import Accuracy
    from fishbench.run.schedule import LRSchedule

Arrays = dict[str, np.ndarray]


@dataclass
class BackendSection:
    """The ``backend`` group's keys common to every backend; a backend extends it with its own."""

    name: str = "pytorch"

    def check(self) -> None:
        """Stop with :class:`~fishbench.errors.ConfigError` on a value out of range."""


class Trainer(ABC):
    """The framework-specific part of a run. ``rank``/``world_size`` describe data parallelism."""

    # What metrics.json reports beside the training numbers; a backend overrides what it knows.
    images_skipped: int = 0  # unreadable files passed over (dataset.bad_images=skip)
    model_gflops_per_image: float | None = None  # forward GFLOPs of one image, where counted
    accelerator: str | None = None  # the device's name in run/metrics.py's peak-FLOP/s table
    precision: str = "fp32"  # of training: fp32, bf16 or fp16

    def __init__(self, cfg: RunConfig, spec: DataSpec, rank: int = 0, world_size: int = 1) -> None:
        self.cfg = cfg
        self.spec = spec
        self.rank = rank
        self.world_size = world_size

    def settings(self) -> dict[str, Any]:
        """What this run chose where the config leaves the choice open (decoder, loader workers,
        CPU threads, compile mode, precision, memory format): logged and kept in metrics.json."""
        return {}

    @property
    @abstractmethod
    def steps_per_epoch(self) -> int:
        """Training steps per epoch on each rank."""

    @abstractmethod
    def train_epoch(self, epoch: int, schedule: LRSchedule, first_step: int,
                    logger: StepLogger) -> float:
        """Train one epoch with learning rate ``schedule.lr(first_step + i)`` at step ``i``;
        return the mean loss over all ranks. Call ``logger.step(...)`` after every step (it
        decides when to sync)."""

    def close(self) -> None:
        """Stop what training keeps running from epoch to epoch (input workers, threads); the
        engine calls it however training ends. Training may start again afterwards."""

    @property
    @abstractmethod
    def val_steps(self) -> int:
        """Validation batches on each rank."""

    @abstractmethod
    def evaluate(self, on_batch: Callable[[], None] | None = None) -> Accuracy:
        """Top-k counts over the whole validation split (summed over ranks); ``on_batch``, where
        given, is called after each batch (the live display counts them)."""

    @abstractmethod
    def rank_rng_states(self) -> list[Any]:
        """Every rank's RNG states, indexed by rank: a collective, called on every rank."""

    @abstractmethod
    def save_checkpoint(self, path: Path, meta: dict[str, Any], rng_states: list[Any]) -> None:
        """Write weights, optimizer/scaler state, every rank's ``rng_states`` and ``meta``, as
        tensors and plain values only (a file that loading could make run code is refused)."""

    @abstractmethod
    def load_checkpoint(self, path: Path, full: bool) -> dict[str, Any]:
        """Load this backend's checkpoint: weights (and, with ``full``, the training state and
        this rank's RNG states); return the saved ``meta``. Check ``meta`` with
        :func:`fishbench.run.checkpoints.check_meta` before loading any weight."""

    @abstractmethod
    def load_weights(self, weights: Arrays) -> None:
        """Load model weights named as torch's state dict (another backend's checkpoint);
        ValueError naming the names that do not match the model."""

    @abstractmethod
    def weights_finite(self) -> bool:
        """Whether every parameter and buffer (BatchNorm statistics included) is finite."""

    @abstractmethod
    def versions(self) -> dict[str, str]:
        """Framework versions for ``metrics.json``."""


class Backend(ABC):
    """One framework: what the hall asks of it, and nothing else."""

    name: ClassVar[str]
    checkpoint_suffix: ClassVar[str]
    config_section: ClassVar[type[BackendSection]]

    @abstractmethod
    def decoders(self, cfg: RunConfig) -> tuple[str, ...]:
        """The ``dataset.decoder`` engines this run may use, the ``auto`` choice first."""

    @abstractmethod
    def check_runtime(self, cfg: RunConfig) -> None:
        """Stop before any work, naming what is missing, when the device or its runtime is."""

    def keep_dumps_in(self, run_dir: Path) -> None:
        """Send what the framework writes by itself (a failed graph compile's dump, ...) into
        ``run_dir`` instead of the current dir; called before the trainer is created."""

    @abstractmethod
    def create_trainer(self, cfg: RunConfig, spec: DataSpec, rank: int = 0, world_size: int = 1,
                       local_rank: int = 0) -> Trainer:
        """The trainer of one process of the run."""

    @abstractmethod
    def launch_workers(self, world: WorldConfig, port: int, run_dir: Path) -> None:
        """Start this node's ``world.nproc_per_node`` workers (each runs ``python -m
        fishbench.run.worker RUN_DIR NODE_RANK``) with the framework's launcher, and wait for them."""

    @abstractmethod
    def join_workers(self, cfg: Any) -> tuple[int, int, int]:
        """In a started worker: join the others; return (rank, world size, local rank)."""

    @abstractmethod
    def leave_workers(self) -> None:
        """In a worker that joined: leave the group."""

    @abstractmethod
    def read_weights(self, path: Path, model_name: str) -> tuple[Arrays, dict[str, Any]]:
        """The model weights of this backend's checkpoint file, named as torch's state dict, and
        the run's meta; :class:`~fishbench.errors.CheckpointError` for any other file."""

    @abstractmethod
    def export(self, trainer: Trainer, stem: Path, shape: tuple[int, ...]) -> dict[str, Path]:
        """Write the trainer's model for deployment as ``stem.<format>``; return format -> file."""
