"""What every run writes into its output dir, identical for both backends.

- ``metrics.json``: the final numbers and the run's status (``running``, ``completed``, ``failed``,
  ``interrupted``); always valid JSON (a NaN or infinite number is written as ``null``);
- ``history.csv``: one row per epoch;
- TensorBoard event files under ``tensorboard/``.

Every file is written atomically (a temporary file renamed over the old one), so a crash never
leaves a half-written file behind; the file gets the permissions of the user's umask.
"""

from __future__ import annotations

import csv
import io
import json
import math
import itertools
import os
import socket
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from tensorboard.compat.proto import summary_pb2

METRICS_FILE = "metrics.json"
HYDRA_DIR = ".hydra"
HYDRA_YAML_FILES = ("config.yaml", "hydra.yaml", "overrides.yaml")  # written by Hydra
CONFIG_RECORD = "config.json"  # what the YAML holds, cheap to read (fishbench/run/config_record.py)
HYDRA_FILES = (*HYDRA_YAML_FILES, CONFIG_RECORD)  # .hydra/'s files, the record last
TEMP_GLOB = ".*.tmp*"  # what atomic_write leaves behind when killed mid-write
HISTORY_FILE = "history.csv"
TENSORBOARD_DIR = "tensorboard"
HISTORY_COLUMNS = ("epoch", "lr", "train_loss", "top1", "top5", "epoch_time_s", "img_per_s")
_EVENT_FILE_IDS = itertools.count()  # tells apart the event files this process opens in a second


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` on a temporary path beside ``path``, then rename it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp's 0600 would hide it from the group
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text))


def atomic_write_bytes(path: Path, data: bytes) -> None:
    atomic_write(path, lambda tmp: tmp.write_bytes(data))


def remove_stale_temp_files(folder: Path) -> list[Path]:
    """Delete the temporary files that a process killed mid-write left in ``folder``."""
    stale = sorted(Path(folder).glob(TEMP_GLOB)) if Path(folder).is_dir() else []
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def finite_or_none(value: Any) -> Any:
    """``value`` with every NaN or infinite float (also inside dicts and lists) replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_none(v) for v in value]
    return value


def write_metrics(run_dir: Path, metrics: dict[str, Any]) -> None:
    """Write ``run_dir/metrics.json`` atomically as strict JSON (no NaN)."""
    text = json.dumps(finite_or_none(metrics), indent=2, allow_nan=False) + "\n"
    atomic_write_text(Path(run_dir) / METRICS_FILE, text)


def read_history(run_dir: Path) -> list[dict[str, float]]:
    """The rows of ``history.csv`` (``epoch`` as int, the rest as float); [] if there is none."""
    path = Path(run_dir) / HISTORY_FILE
    if not path.exists():
        return []
    with path.open() as f:
        return [{k: int(v) if k == "epoch" else float(v) for k, v in row.items()}
                for row in csv.DictReader(f)]


class ScalarWriter:
    """A TensorBoard event file in ``log_dir``, written with tensorboard's record writer (no
    framework needed) in the calling thread: a sweep summary writes one per job, and
    tensorboard's EventFileWriter starts and joins a thread for each (seconds for a thousand).

    tensorboard is imported here, not with this module: it takes a second to import, and the
    readers of run dirs (``fishbench compare``) never write events."""

    def __init__(self, log_dir: Path) -> None:
        from tensorboard.compat.proto import event_pb2
        from tensorboard.summary.writer.record_writer import RecordWriter

        log_dir.mkdir(parents=True, exist_ok=True)
        name = (f"events.out.tfevents.{int(time.time()):010d}.{socket.gethostname()}."
                f"{os.getpid()}.{next(_EVENT_FILE_IDS)}")
        self._writer = RecordWriter(open(log_dir / name, "wb"))  # noqa: SIM115  (closed in close)
        self._event = event_pb2.Event
        self._add(self._event(wall_time=time.time(), file_version="brain.Event:2"))

    def _add(self, event: Any) -> None:
        self._writer.write(event.SerializeToString())

    def add_summary(self, summary: summary_pb2.Summary, step: int = 0) -> None:
        self._add(self._event(wall_time=time.time(), step=step, summary=summary))

    def add_scalar(self, tag: str, value: float, step: int) -> None:
        from tensorboard.compat.proto import summary_pb2

        self.add_summary(summary_pb2.Summary(
            value=[summary_pb2.Summary.Value(tag=tag, simple_value=value)]), step)

    def flush(self) -> None:
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()


class RunRecorder:
    """Writes a run's files; only rank 0 creates one (other ranks pass ``None`` around)."""

    def __init__(self, run_dir: Path, info: dict[str, Any]) -> None:
        self.run_dir = Path(run_dir)
        self.info = dict(info)  # model, backend, device, world_size, versions, ...
        self.history = read_history(self.run_dir)  # a resumed run continues its history
        self._tb: ScalarWriter | None = None  # opened at the first record: see :attr:`tb`
        self.started = time.time()  # earlier parts of a resumed run: see :meth:`continue_from`
        self.metrics: dict[str, Any] = {**self.info, "status": "running"}
        self._write_metrics()

    def elapsed_s(self) -> float:
        """Seconds the run has taken, its earlier parts (before a resume) included."""
        return time.time() - self.started

    def continue_from(self, elapsed_s: float) -> None:
        """A resumed run: count the ``elapsed_s`` of its earlier parts in ``total_time_s``."""
        self.started = time.time() - elapsed_s

    @property
    def tb(self) -> ScalarWriter:
        """The run's TensorBoard writer, opened at the first scalar: a command that fails
        before it records anything adds no event file."""
        if self._tb is None:
            self._tb = ScalarWriter(self.run_dir / TENSORBOARD_DIR)
        return self._tb

    def log_step(self, step: int, loss: float, lr: float, img_per_s: float) -> None:
        self.tb.add_scalar("train/loss", loss, step)
        self.tb.add_scalar("train/lr", lr, step)
        self.tb.add_scalar("train/img_per_s", img_per_s, step)

    def log_epoch(self, row: dict[str, float]) -> None:
        """Append one ``history.csv`` row (keys: :data:`HISTORY_COLUMNS`) and its scalars."""
        self.history = [r for r in self.history if r["epoch"] < row["epoch"]] + [row]
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=HISTORY_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: r[k] for k in HISTORY_COLUMNS} for r in self.history)
        atomic_write_text(self.run_dir / HISTORY_FILE, buf.getvalue())
        epoch = int(row["epoch"])
        self.tb.add_scalar("val/top1", row["top1"], epoch)
        self.tb.add_scalar("val/top5", row["top5"], epoch)
        self.tb.add_scalar("train/epoch_loss", row["train_loss"], epoch)
        self.tb.add_scalar("train/epoch_img_per_s", row["img_per_s"], epoch)
        self.tb.flush()

    def best(self) -> dict[str, Any]:
        """``best_top1`` and its ``best_epoch`` over the epochs trained; none for a run without
        any (eval, export, infer, or a train run stopped in its first epoch)."""
        if not self.history:
            return {}
        row = max(self.history, key=lambda r: (r["top1"], -r["epoch"]))
        return {"best_top1": row["top1"], "best_epoch": int(row["epoch"])}

    def finish(self, status: str, error: str | None = None, **results: Any) -> dict[str, Any]:
        """Write the final ``metrics.json``; ``results`` holds top1, top5, loss, steps, timing..."""
        self.metrics = {
            **self.info,
            **self.best(),
            **results,
            "total_time_s": round(self.elapsed_s(), 3),
            "status": status,
        }
        if error is not None:
            self.metrics["error"] = error
        self._write_metrics()
        if self._tb is not None:
            self._tb.close()
        return self.metrics

    def _write_metrics(self) -> None:
        write_metrics(self.run_dir, self.metrics)
