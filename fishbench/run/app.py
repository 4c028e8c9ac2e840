"""One run: validate the config, check the device and data, then train, eval, export or infer."""

from __future__ import annotations

import importlib.metadata
import json
import logging
import math
import os
import platform
import signal
import sys
from pathlib import Path
from typing import Any, Callable

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

import fishbench
from fishbench.backends import checkpoint_suffixes, get_backend
from fishbench.run.config_record import write_config_record
from fishbench.run.checkpoints import (CheckpointPolicy, Progress, check_same_world,
                                       load_checkpoint_into, resolve_checkpoint, resumed_progress)
from fishbench.config import RunConfig, validate
from fishbench.data.spec import load_data_spec
from fishbench.run.engine import fit
from fishbench.errors import CheckpointError, FishbenchError, RunInterrupted
from fishbench.run.export import export_model
from fishbench.run.infer import infer_onnx
from fishbench.run.launch import launch, resume_hint, slurm_worker_env
from fishbench.run.logs import LibraryChatter
from fishbench.run.metrics import utilisation
from fishbench.run.records import METRICS_FILE, RunRecorder, remove_stale_temp_files, write_metrics
from fishbench.run.rundir import RunDirClaim, held_claim
from fishbench.sweeps.resume import RESUME_ENV

log = logging.getLogger("fishbench")


def main(cfg: DictConfig) -> float:
    """Hydra's task function: returns the final validation top1 (what a sweeper optimises).

    A user error stops a single run with its message and exit status 2 (1 when a file of the
    run could not be written); in a multirun the job is recorded as failed and the sweep goes
    on (the return value is then NaN). SIGINT/SIGTERM mark the run interrupted and raise
    :class:`RunInterrupted` (``run.py`` exits 128 + the signal). A command that ends before it
    saved a checkpoint leaves the run that its dir held as it was
    (:class:`~fishbench.run.rundir.RunDirClaim`).
    """
    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    write_config_record(run_dir)  # what `fishbench compare` and sweep summaries read
    if os.environ.get(RESUME_ENV) == "1":  # a job that a resumed sweep continues
        cfg.resume = True
    claim = held_claim(run_dir)
    stop_on_signals()
    try:
        config = validate(cfg)
        slurm_env = slurm_worker_env(config.world)
        if slurm_env is not None:  # Slurm started this task as one worker of the world
            os.environ.update(slurm_env)
            return run_worker(cfg, run_dir)
        if config.world.size > 1:
            return run_workers(config, cfg, run_dir)
        return run(cfg, run_dir)
    except (FishbenchError, KeyboardInterrupt) as err:
        log.error("%s", outcome(err, run_dir)[1])
        settle(run_dir, cfg, err, claim)
        if isinstance(err, KeyboardInterrupt):
            raise
        if multirun:
            return math.nan
        sys.exit(err.exit_code)
    except Exception as err:
        log.exception("run failed")
        settle(run_dir, cfg, err, claim)
        if multirun:
            return math.nan
        raise
    finally:
        if claim is not None:
            claim.release()


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def stop_on_signals() -> None:
    """SIGINT and SIGTERM raise :class:`RunInterrupted` (in the main thread, where Python runs
    signal handlers), so that the run is recorded as interrupted instead of left "running".
    A second one, while the process shuts down, ends it at once and quietly (its exception
    would otherwise surface in whatever cleanup it hit, e.g. an atexit function)."""

    def interrupt(signum: int, _frame: Any) -> None:
        for other in STOP_SIGNALS:
            signal.signal(other, exit_now)
        raise RunInterrupted(signum)

    def exit_now(signum: int, _frame: Any) -> None:
        os._exit(128 + signum)

    for signum in STOP_SIGNALS:
        signal.signal(signum, interrupt)


def outcome(err: BaseException, run_dir: Path) -> tuple[str, str]:
    """The status (``interrupted`` for a :class:`KeyboardInterrupt`, else ``failed``) and the
    message that ``metrics.json`` and the terminal give ``err``; an interruption adds how to
    continue."""
    if isinstance(err, KeyboardInterrupt):
        return "interrupted", f"The run was {str(err) or 'interrupted'}. {resume_hint(run_dir)}"
    return "failed", str(err) or type(err).__name__


def settle(run_dir: Path, cfg: DictConfig, err: BaseException, claim: RunDirClaim | None
           ) -> None:
    """Record how this command ended. A command that saved no checkpoint puts back the files of
    the run its dir held: a completed run stays completed; another run keeps its history and
    ``.hydra/``, and its ``metrics.json`` records this failure."""
    if claim is not None and claim.status is not None and not claim.trained_further():
        claim.restore()
        if claim.status == "completed":
            log.warning("%s still holds the completed run it held before this command.", run_dir)
            return
    record_failure(run_dir, cfg, err)


def run_workers(config: RunConfig, cfg: DictConfig, run_dir: Path) -> float:
    """Check the device (and the checkpoint a resumed run continues) here, start this node's
    workers, return rank 0's top1 (NaN elsewhere)."""
    backend = get_backend(config.backend.name)
    backend.check_runtime(config)
    if config.resume:
        source = resolve_checkpoint(config.ckpt_path or run_dir, (backend.checkpoint_suffix,))
        meta = backend.read_weights(source, config.model.name)[1]
        check_same_world(meta, config.batch_size, config.world.size, source)
    launch(config, cfg, run_dir)
    path = run_dir / METRICS_FILE
    top1 = json.loads(path.read_text()).get("top1") if path.exists() else None
    return math.nan if top1 is None else float(top1)


def run_worker(cfg: DictConfig, run_dir: Path) -> float:
    """One data-parallel worker: join the process group, log to ``rank<r>.log``, run its share."""
    stop_on_signals()
    backend = get_backend(str(cfg.backend.name))
    rank, world_size, local_rank = backend.join_workers(validate(cfg))
    log_to_rank_file(run_dir, rank)
    try:
        return run(cfg, run_dir, rank, world_size, local_rank)
    except RunInterrupted as err:
        log.error("worker rank %d was %s", rank, err)
        raise
    except Exception:
        log.exception("worker rank %d failed", rank)
        raise
    finally:
        backend.leave_workers()


def log_to_rank_file(run_dir: Path, rank: int) -> None:
    """Log to ``run_dir/rank<r>.log``; only rank 0 also prints progress to the terminal."""
    fmt = logging.Formatter(f"[%(asctime)s][rank {rank}][%(name)s][%(levelname)s] - %(message)s")
    console = logging.StreamHandler(sys.stdout)
    console.setLevel(logging.INFO if rank == 0 else logging.WARNING)
    console.addFilter(LibraryChatter())
    root = logging.getLogger()
    root.handlers[:] = []
    for handler in (logging.FileHandler(run_dir / f"rank{rank}.log"), console):
        handler.setFormatter(fmt)
        root.addHandler(handler)
    root.setLevel(logging.INFO)


def run(cfg: DictConfig, run_dir: Path, rank: int = 0, world_size: int = 1,
        local_rank: int = 0) -> float:
    """One process's share of the run (the whole run when ``world_size`` is 1)."""
    config = validate(cfg)
    if config.task == "infer":  # an exported ONNX file: onnxruntime only, no framework
        spec = load_data_spec(config)
        versions = {"onnxruntime": importlib.metadata.version("onnxruntime")}
        return recorded(run_dir, config, versions, lambda _: infer_onnx(config, spec))
    backend = get_backend(config.backend.name)
    backend.check_runtime(config)
    spec = load_data_spec(config)
    config.model.num_classes = spec.num_classes
    backend.keep_dumps_in(run_dir)
    trainer = backend.create_trainer(config, spec, rank, world_size, local_rank)

    def task(recorder: RunRecorder | None) -> dict[str, Any]:
        results = run_task(config, trainer, recorder, run_dir)
        gflops = trainer.model_gflops_per_image
        mfu = utilisation(gflops, results.get("img_per_s", math.nan), trainer.accelerator,
                          trainer.precision, world_size) if config.task == "train" else None
        return {"images_skipped": trainer.images_skipped, **results,
                "model_gflops_per_image": gflops, "mfu": mfu,
                "settings": trainer.settings()}  # with what training found out (a cache hit)

    settings = trainer.settings()
    if settings:
        log.info("settings: %s", ", ".join(f"{k} {v}" for k, v in settings.items()))

    return recorded(run_dir, config, trainer.versions(), task, writes=rank == 0)


def recorded(run_dir: Path, config: RunConfig, versions: dict[str, str],
             task: Callable[[RunRecorder | None], dict[str, Any]], writes: bool = True) -> float:
    """Run ``task`` with a recorder of ``run_dir`` (none on ranks that do not ``write``), mark
    the run completed, failed or interrupted, and return its top1."""
    if not writes:
        return float(task(None).get("top1", math.nan))
    recorder = RunRecorder(run_dir, run_info(config, versions))
    try:
        results = task(recorder)
    except BaseException as err:
        status, message = outcome(err, run_dir)
        best_effort(run_dir, lambda: recorder.finish(status, error=message))
        raise
    recorder.finish("completed", **results)
    return float(results.get("top1", math.nan))


def run_task(config: RunConfig, trainer, recorder: RunRecorder | None, run_dir: Path) -> dict[str, Any]:
    own = get_backend(config.backend.name).checkpoint_suffix
    suffixes, weights = (own,), checkpoint_suffixes(own)  # weights: any backend's checkpoint
    if config.task in ("eval", "export") and config.ckpt_path is None:
        raise CheckpointError(f"task={config.task} needs ckpt_path=<checkpoint file or run dir>.")
    if config.task == "export":
        return export_model(config, trainer, resolve_checkpoint(config.ckpt_path, weights), run_dir)
    if config.task == "eval":
        meta = load_checkpoint_into(trainer, resolve_checkpoint(config.ckpt_path, weights), own,
                                    full=False)
        top1, top5 = trainer.evaluate().percent()[:2]
        log.info("eval of %s: top1 %.2f  top5 %.2f", config.ckpt_path, top1, top5)
        return {"top1": top1, "top5": top5, "epochs": meta.get("epoch", 0),
                "steps": meta.get("global_step", 0), "ckpt_path": str(config.ckpt_path)}
    if config.task != "train":
        raise FishbenchError(f"task={config.task} is not available for backend="
                             f"{config.backend.name} yet.")
    policy = CheckpointPolicy(run_dir, own, config.save_checkpoint_epochs,
                              config.keep_checkpoint_max)
    if recorder is not None:  # the one writer: a kill mid-write left these
        for stale in remove_stale_temp_files(policy.dir) + remove_stale_temp_files(run_dir):
            log.info("removed %s, left by an interrupted write", stale)
    progress = Progress()
    if config.resume:
        source = resolve_checkpoint(config.ckpt_path or run_dir, suffixes)
        meta = load_checkpoint_into(trainer, source, own, full=True)
        progress = resumed_progress(trainer, meta, source)
        log.info("resumed from %s at epoch %d, step %d", source, progress.epoch, progress.global_step)
    elif config.ckpt_path is not None:
        load_checkpoint_into(trainer, resolve_checkpoint(config.ckpt_path, weights), own,
                             full=False)
        log.info("starting from the weights of %s", config.ckpt_path)
    return fit(trainer, recorder, policy, progress)


def run_info(config: RunConfig, versions: dict[str, str]) -> dict[str, Any]:
    return {"model": config.model.name, "backend": config.backend.name,
            "device": config.device.name, "world_size": config.world.size,
            "dataset": config.dataset.name, "task": config.task,
            "batch_size": config.batch_size,
            "versions": {"fishbench": fishbench.__version__, "python": platform.python_version(),
                         **versions}}


def record_failure(run_dir: Path, cfg: DictConfig, err: BaseException) -> None:
    """Mark the run failed with ``err`` (a bad config, a missing device or data, a dead worker),
    or interrupted when ``err`` is a :class:`KeyboardInterrupt`.

    The error of this (outermost) process is the one users read; an earlier error that rank 0
    recorded is kept as ``cause``. A run that rank 0 completed stays completed.
    """
    path = run_dir / METRICS_FILE
    try:
        previous = json.loads(path.read_text()) if path.exists() else {}
    except ValueError:  # not JSON: replaced by this record
        previous = {}
    previous = previous if isinstance(previous, dict) else {}
    if previous.get("status") == "completed":
        return
    status, message = outcome(err, run_dir)

    def pick(key: str) -> Any:
        return OmegaConf.select(cfg, key, default=None, throw_on_resolution_failure=False)

    info = {"model": pick("model.name"), "backend": pick("backend.name"),
            "device": pick("device.name"), "dataset": pick("dataset.name"), "task": pick("task"),
            **previous, "status": status, "error": message}
    if previous.get("error") not in (None, message):
        info["cause"] = previous["error"]
    best_effort(run_dir, lambda: write_metrics(run_dir, info))


def best_effort(run_dir: Path, record: Callable[[], Any]) -> None:
    """Record a failure; when that write fails too (the disk is still full), say so instead of
    adding its traceback to the failure's message."""
    try:
        record()
    except OSError as err:
        log.warning("could not record the failure in %s (%s)", run_dir / METRICS_FILE, err)
