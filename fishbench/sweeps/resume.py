"""Resuming a sweep: which of its jobs run again, and refusing a command that changes the sweep.

A sweep dir keeps what a resume needs: ``multirun.yaml`` (the command's overrides and the
sweeper's config, written when the sweep first starts) and one run dir per job with its
``metrics.json`` status and ``checkpoints/last``. The sweepers of
``hydra_plugins/fishbench_sweeps/resumable.py`` plan every job with :func:`plan_job` and launch
only those that must run; a job that continues is told so through :data:`RESUME_ENV`, which makes
it a ``resume=true`` run of its own dir.
"""

from __future__ import annotations

import json
import os
import re
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from fishbench.backends import backend_names, get_backend
from fishbench.run.checkpoints import CHECKPOINT_DIR
from fishbench.compare.runs import read_metrics
from fishbench.errors import FishbenchError
from fishbench.run.records import METRICS_FILE

SWEEP_FILE = "multirun.yaml"  # Hydra's name for the sweep's config
OWNER_FILE = "sweep.pid"  # "<host> <pid>" of the process running the sweep, while it runs
SUMMARY_CALLBACK = "fishbench.sweeps.summary.SweepSummary"
RESUME_ENV = "FISHBENCH_RESUME"  # "1" in a job's environment: continue its run dir
RESUME_OVERRIDE = f"++hydra.job.env_set.{RESUME_ENV}=1"
RESUME_HINT = "`fishbench resume {dir}` (or the same command with hydra.sweeper.resume=true)"
# Keys a resumed command may change without changing the sweep.
FREE_SWEEPER_KEYS = ("resume", "retry_failed", "n_trials")
FREE_HYDRA_OVERRIDES = ("hydra.sweep.dir", "hydra.mode", "hydra.sweeper.resume",
                        "hydra.sweeper.retry_failed", "hydra.sweeper.n_trials", "hydra/launcher",
                        "hydra.launcher")
MISSPELLINGS = ("sweep_resume", "resume_sweep", "sweep.resume")


class SweepError(FishbenchError):
    """A sweep cannot be started or resumed as asked; nothing was written."""


@dataclass(frozen=True)
class JobPlan:
    """What a resumed sweep does with job ``num``: ``skip`` it, ``continue`` it from its
    ``checkpoints/last``, ``restart`` it from scratch in its dir, or ``start`` it."""

    num: int
    action: str
    why: str

    @property
    def runs(self) -> bool:
        return self.action != "skip"

    @property
    def extra_overrides(self) -> tuple[str, ...]:
        return (RESUME_OVERRIDE,) if self.action == "continue" else ()


def trial_overrides(sweep_dir: Path, trial: Any) -> list[str]:
    """The overrides an Optuna trial's job was launched with: its ``.hydra/overrides.yaml``, or,
    for a trial stopped before its job started, its sampled and fixed parameters as Hydra's
    Optuna sweeper writes them."""
    saved = sweep_dir / str(trial.number) / ".hydra" / "overrides.yaml"
    if saved.is_file():
        return [str(o) for o in OmegaConf.load(saved)]
    params = {**trial.params, **trial.user_attrs}
    return [f"{name}={value}" for name, value in params.items()]


def has_last_checkpoint(job_dir: Path) -> bool:
    return any((job_dir / CHECKPOINT_DIR / f"last{s}").is_file()
               for s in (get_backend(name).checkpoint_suffix for name in backend_names()))


def plan_job(sweep_dir: Path, num: int, retry_failed: bool) -> JobPlan:
    """Decide job ``num`` of a resumed sweep from its dir (see :class:`JobPlan`).

    ``completed``: skipped, its files untouched. ``failed``: kept unless ``retry_failed``.
    ``running`` (its process is gone), ``interrupted``, or any other state: continued from its
    last checkpoint, else restarted in its dir. No ``metrics.json``: started."""
    job_dir = sweep_dir / str(num)
    status = read_metrics(job_dir)["status"] if (job_dir / METRICS_FILE).is_file() else None
    if status == "completed":
        return JobPlan(num, "skip", "completed")
    if status == "failed" and not retry_failed:
        return JobPlan(num, "skip", "failed (--retry-failed / hydra.sweeper.retry_failed=true "
                                    "runs it again)")
    if has_last_checkpoint(job_dir):
        return JobPlan(num, "continue", f"{status}: continues from {CHECKPOINT_DIR}/last")
    if status is None:
        return JobPlan(num, "start", "never started")
    return JobPlan(num, "restart", f"{status}, no checkpoint yet: starts again in its dir")


def describe_plans(plans: list[JobPlan]) -> str:
    return "\n".join(f"  job {p.num}: {p.why}" for p in plans)


def check_sweep_dir(sweep_dir: Path, resume: bool, task_overrides: list[str]) -> DictConfig | None:
    """Refuse a command that would overwrite or misread a sweep dir; return the saved sweep
    config when resuming (``None`` for a new sweep)."""
    keys = [_override_key(o) for o in task_overrides]
    for wrong in MISSPELLINGS:
        if wrong in keys:
            raise SweepError(
                f"'{wrong}' is not a fishbench key. To resume the sweep in hydra.sweep.dir, run "
                f"{RESUME_HINT.format(dir='<sweep dir>')}.")
    saved_file = sweep_dir / SWEEP_FILE
    if not resume:
        if saved_file.exists() or _job_dirs(sweep_dir):
            how = ("resume=true continues one run; a sweep is resumed with" if "resume" in keys
                   else "To continue it:")
            raise SweepError(
                f"hydra.sweep.dir={sweep_dir} already holds a sweep: starting one there would "
                f"overwrite its jobs. {how} {RESUME_HINT.format(dir=sweep_dir)}. To start a new "
                f"sweep, pick another hydra.sweep.dir (or leave it out).")
        return None
    if not saved_file.is_file():
        raise SweepError(
            f"hydra.sweeper.resume=true: {sweep_dir} is not a sweep dir (no {SWEEP_FILE}). Give "
            f"hydra.sweep.dir=<the dir of the sweep to continue>, as `fishbench resume DIR` does.")
    saved = load_sweep_file(saved_file)
    callbacks = OmegaConf.select(saved, "hydra.callbacks", default=None) or {}
    if SUMMARY_CALLBACK not in {str(c.get("_target_")) for c in callbacks.values()}:
        raise SweepError(f"{sweep_dir} holds a Hydra sweep that fishbench did not start "
                         f"({SWEEP_FILE} has no {SUMMARY_CALLBACK}): it cannot be resumed here.")
    owner = running_owner(sweep_dir)
    if owner is not None:
        raise SweepError(f"the sweep in {sweep_dir} is still running (process {owner}): stop it "
                         f"first, or wait for it to end (if that process is not the sweep, "
                         f"delete {sweep_dir / OWNER_FILE}).")
    if "resume" in keys:
        raise SweepError(
            "resume=true is for one run; in a resumed sweep each job that was interrupted "
            "continues by itself and completed jobs are kept. Leave resume=true out: "
            f"{RESUME_HINT.format(dir=sweep_dir)}.")
    return saved


def load_sweep_file(path: Path) -> DictConfig:
    """The sweep's saved config; :class:`SweepError` for a damaged file (not YAML, or without
    the overrides and sweeper a resume repeats)."""
    try:
        saved = OmegaConf.load(path)
        ok = isinstance(saved, DictConfig) and all(
            isinstance(OmegaConf.select(saved, key, default=None), kind)
            for key, kind in (("hydra.overrides.task", ListConfig),
                              ("hydra.overrides.hydra", ListConfig),
                              ("hydra.sweeper", DictConfig)))
        why = "it lacks hydra.overrides or hydra.sweeper"
    except (yaml.YAMLError, UnicodeDecodeError, OmegaConfBaseException) as err:
        ok, why = False, f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
    if not ok:
        raise SweepError(
            f"{path} is damaged ({why}): it records how the sweep was started, so the sweep "
            "cannot be resumed from it. Put back a good copy of the file, or start a new sweep "
            "in another hydra.sweep.dir."
        )
    return saved  # type: ignore[return-value]


def check_same_sweep(saved: DictConfig, current: DictConfig, task_overrides: list[str]) -> None:
    """Refuse when the resumed command is not the saved sweep's: other task overrides (swept keys,
    values, fixed keys), other Hydra overrides, or another sweeper config."""
    sweep_dir = current.hydra.sweep.dir
    differences = []
    was = [str(o) for o in saved.hydra.overrides.task]
    if was != list(task_overrides):
        differences.append(_listed("overrides", was, list(task_overrides)))
    was_hydra = _kept_hydra_overrides(saved.hydra.overrides.hydra)
    now_hydra = _kept_hydra_overrides(current.hydra.overrides.hydra)
    if sorted(was_hydra) != sorted(now_hydra):
        differences.append(_listed("Hydra overrides", was_hydra, now_hydra))
    was_sweeper, now_sweeper = _sweeper_node(saved), _sweeper_node(current)
    if was_sweeper != now_sweeper:
        changed = {key: (was_sweeper.get(key), now_sweeper.get(key))
                   for key in {*was_sweeper, *now_sweeper}
                   if was_sweeper.get(key) != now_sweeper.get(key)}
        differences.append("sweeper settings (saved, now): " + ", ".join(
            f"hydra.sweeper.{key} ({json.dumps(was, default=str)}, {json.dumps(now, default=str)})"
            for key, (was, now) in sorted(changed.items())))
    if differences:
        raise SweepError(
            f"this command would change the sweep in {sweep_dir}, so it is not resumed (nothing "
            f"was written): " + "; ".join(differences) + ". Resume it as it was saved with "
            f"`fishbench resume {sweep_dir}`, or start a new sweep in another hydra.sweep.dir.")


def running_owner(sweep_dir: Path) -> str | None:
    """``"<pid> on <host>"`` when the process that ran the sweep is alive on this host; ``None``
    when it is gone (a killed sweep leaves its ``sweep.pid``) or ran on another host."""
    try:
        host, pid = (sweep_dir / OWNER_FILE).read_text().split()
        if host == socket.gethostname():
            os.kill(int(pid), 0)
            return f"{pid} on {host}"
    except (OSError, ValueError):
        pass
    return None


@contextmanager
def sweep_owner(sweep_dir: Path) -> Iterator[None]:
    """Mark ``sweep_dir`` as run by this process while the sweep runs."""
    owner_file = sweep_dir / OWNER_FILE
    owner_file.write_text(f"{socket.gethostname()} {os.getpid()}\n")
    try:
        yield
    finally:
        owner_file.unlink(missing_ok=True)


def _override_key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def _job_dirs(sweep_dir: Path) -> list[Path]:
    return [p for p in sweep_dir.iterdir() if p.name.isdigit() and p.is_dir()] \
        if sweep_dir.is_dir() else []


def _kept_hydra_overrides(overrides: Any) -> list[str]:
    return [str(o) for o in overrides
            if not _override_key(str(o)).startswith(FREE_HYDRA_OVERRIDES)]


def _sweeper_node(config: DictConfig) -> dict[str, Any]:
    node = OmegaConf.to_container(config.hydra.sweeper, resolve=False)
    assert isinstance(node, dict)
    return {k: v for k, v in node.items() if k not in FREE_SWEEPER_KEYS}


def _listed(what: str, was: list[str], now: list[str]) -> str:
    gone = [o for o in was if o not in now]
    new = [o for o in now if o not in was]
    if not gone and not new:
        return f"{what} in another order (it numbers the jobs): saved [{' '.join(was)}]"
    return (f"{what} saved but not given now: [{' '.join(gone)}], given now but not saved: "
            f"[{' '.join(new)}]")


def resume_command(sweep_dir: Path, retry_failed: bool, extra: list[str]) -> tuple[list[str], Path]:
    """The ``run.py`` arguments that resume ``sweep_dir`` as saved, and the dir to run them in
    (the sweep's own working dir, so relative paths mean what they meant)."""
    saved_file = sweep_dir / SWEEP_FILE
    if not saved_file.is_file():
        raise SweepError(f"{sweep_dir} is not a sweep dir: it has no {SWEEP_FILE}. Give the dir "
                         f"a multirun wrote (outputs/sweeps/<date>/<time>_<name>_<uid>).")
    saved = load_sweep_file(saved_file)
    task = [str(o) for o in saved.hydra.overrides.task]
    replaced = {"hydra.sweep.dir", "hydra.mode", *(_override_key(o) for o in extra)}
    hydra = [str(o) for o in saved.hydra.overrides.hydra
             if _override_key(str(o)) not in replaced]
    flags = ["hydra.sweeper.resume=true"] + (["hydra.sweeper.retry_failed=true"]
                                             if retry_failed else [])
    cwd = Path(OmegaConf.select(saved, "hydra.runtime.cwd", default=None) or Path.cwd())
    if not cwd.is_dir():
        raise SweepError(f"the sweep was started in {cwd}, which is gone; relative paths in its "
                         f"overrides would mean something else. Resume it by hand from another "
                         f"dir: python run.py -m <its overrides> hydra.sweep.dir={sweep_dir} "
                         f"hydra.sweeper.resume=true.")
    dir_override = f"hydra.sweep.dir={quoted(str(sweep_dir.resolve()))}"
    return ["-m", *task, *hydra, dir_override, *flags, *extra], cwd


def quoted(value: str) -> str:
    """``value`` as a quoted Hydra override value: backslashes before a quote, or at the end,
    are doubled and quotes escaped."""
    body = re.sub(r"(\\*)'", lambda m: m.group(1) * 2 + "\\'", value)
    return "'" + re.sub(r"(\\+)$", lambda m: m.group(1) * 2, body) + "'"
