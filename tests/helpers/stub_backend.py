"""A stand-in backend for run-level tests, and ``hydra_run``: ``run.py``'s task function through
Hydra in the test's process with that backend.

:class:`StubTrainer` is a few numpy arrays "trained" in microseconds, saved and loaded with
pickle. The engine, checkpoint policy, records, run-dir ownership and app are the real ones (Hydra
writes its ``.hydra/`` files and calls fishbench's callbacks as for a real run); what a test
scripts is the stub's loss, its buffers, its checkpoint writes and the signals it sends itself.
"""

from __future__ import annotations

import hashlib
import json
import logging
import pickle
import signal
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Iterator

import numpy as np
import pytest

from fishbench.backends.base import Trainer
from fishbench.data.spec import DataSpec
from fishbench.run.checkpoints import check_meta
from fishbench.run.engine import StepLogger
from fishbench.run.metrics import Accuracy
from fishbench.run.schedule import LRSchedule

REPO = Path(__file__).resolve().parents[2]
STUB_ARGS = ["dataset=synthetic", "dataset.num_classes=10", "dataset.train_samples=64",
             "dataset.val_samples=10", "batch_size=16", "log_every_n_steps=1", "warmup_epochs=0",
             "epochs=2", "save_checkpoint_epochs=1"]


class StubTrainer(Trainer):
    """A "model" of two arrays: ``weight`` moves by the learning rate each step, ``running_var``
    stands for a BatchNorm buffer. ``script`` makes an epoch's loss NaN, a buffer infinite,
    replaces the checkpoint writer, or calls a function (e.g. one that sends a signal) in the
    middle of an epoch."""

    script: dict[str, Any] = {}

    def __init__(self, cfg, spec: DataSpec, rank: int = 0, world_size: int = 1,
                 local_rank: int = 0) -> None:
        super().__init__(cfg, spec, rank, world_size)
        self.weights = {"weight": np.zeros(3), "running_var": np.ones(3)}
        self.rng = np.random.default_rng(cfg.seed + rank)
        self.images_skipped = 0

    @property
    def steps_per_epoch(self) -> int:
        return self.spec.train_size // self.cfg.batch_size

    def train_epoch(self, epoch: int, schedule: LRSchedule, first_step: int,
                    logger: StepLogger) -> float:
        for i in range(self.steps_per_epoch):
            lr = schedule.lr(first_step + i)
            self.weights["weight"] += lr * self.rng.random(3)
            if (epoch + 1, i) == self.script.get("call_at"):
                self.script["call"]()
            loss = self.script.get("loss", {}).get(epoch + 1, 1.0 / (epoch + 1))
            logger.step(epoch, i, first_step + i + 1, lr, loss)
        if epoch + 1 == self.script.get("inf_buffer_epoch"):
            self.weights["running_var"][0] = np.inf
        return 1.0 / (epoch + 1)

    val_steps = 1

    def evaluate(self, on_batch=None) -> Accuracy:
        return Accuracy.from_counts([5, 9, 10])

    def rank_rng_states(self) -> list[Any]:
        return [self.rng.bit_generator.state]

    def save_checkpoint(self, path: Path, meta: dict[str, Any], rng_states: list[Any]) -> None:
        write = self.script.get("write_checkpoint", lambda p, data: p.write_bytes(data))
        write(path, pickle.dumps({"meta": meta, "weights": self.weights, "rng": rng_states}))

    def load_checkpoint(self, path: Path, full: bool) -> dict[str, Any]:
        saved = pickle.loads(path.read_bytes())
        check_meta(saved["meta"], self.cfg, path)
        self.weights = saved["weights"]
        if full:
            self.rng.bit_generator.state = saved["rng"][self.rank]
        return saved["meta"]

    def load_weights(self, weights: dict[str, np.ndarray]) -> None:
        self.weights = weights

    def weights_finite(self) -> bool:
        return all(np.isfinite(v).all() for v in self.weights.values())

    def versions(self) -> dict[str, str]:
        return {"stub": "1"}


def read_stub_weights(path: Path, model_name: str) -> tuple[dict[str, np.ndarray], dict]:
    saved = pickle.loads(path.read_bytes())
    return saved["weights"], saved["meta"]


def no_workers(*args: Any) -> None:
    raise AssertionError("the stub backend starts no workers")


STUB_BACKEND = SimpleNamespace(check_runtime=lambda config: None, create_trainer=StubTrainer,
                               keep_dumps_in=lambda run_dir: None, checkpoint_suffix=".pkl",
                               read_weights=read_stub_weights, launch_workers=no_workers)


@pytest.fixture
def hydra_run(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., int]]:
    """``hydra_run(*args)``: run.py's task function through Hydra in this process with the stub
    backend; returns the exit status (0, 1, 2, or 128 + signal). Restores the signal handlers
    and the logging that Hydra configures."""
    import hydra

    from fishbench.config import register_resolvers
    from fishbench.run.app import main as task_function

    register_resolvers()
    main = hydra.main(version_base="1.3", config_path=str(REPO / "conf"),
                      config_name="config")(task_function)
    for module in ("fishbench.run.app", "fishbench.run.launch"):
        monkeypatch.setattr(f"{module}.get_backend", lambda name: STUB_BACKEND)
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    root = logging.getLogger()
    log_handlers, log_level = root.handlers[:], root.level
    StubTrainer.script = {}

    def hydra_run(*args: str) -> int:
        flags = [a for a in args if a.startswith("-")]  # Hydra's options before the overrides
        overrides = [a for a in args if not a.startswith("-")]
        monkeypatch.setattr(sys, "argv", ["run.py", *flags, *STUB_ARGS, *overrides])
        try:
            main()
        except SystemExit as exit_:
            return int(exit_.code)
        except KeyboardInterrupt as err:
            return err.exit_code
        return 0

    yield hydra_run
    for signum, handler in handlers.items():
        signal.signal(signum, handler)
    for handler in root.handlers:
        if handler not in log_handlers:
            handler.close()
    root.handlers[:], root.level = log_handlers, log_level


def strict_json(path: Path) -> dict:
    def reject(constant: str) -> None:
        raise AssertionError(f"{path} holds {constant}: not valid JSON")

    return json.loads(path.read_text(), parse_constant=reject)


def digest(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (hidden ones included) by its relative path: its SHA-256."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}
