"""fishbench's sweepers: Hydra's grid sweeper and its Optuna sweeper, resumable.

``hydra/sweeper=fishbench`` (the default, ``conf/config.yaml``) and ``fishbench_optuna``
(``sweeps/optuna_fishnet99.yaml``) sweep as Hydra's ``basic`` and ``optuna`` do, and add:

- ``hydra.sweeper.resume=true`` (what ``fishbench resume <sweep dir>`` passes): continue the
  sweep in ``hydra.sweep.dir``. Completed jobs are not launched at all (Hydra would rewrite their
  ``.hydra/``), interrupted ones continue from their last checkpoint under their own job number,
  jobs never started start; an Optuna study continues toward ``n_trials`` in total, numbering
  on from its last trial, after finishing the trials that were cut off.
  ``hydra.sweeper.retry_failed=true`` runs failed grid jobs again.
- a command that would overwrite a sweep dir, or change a resumed sweep, is refused before
  anything is written (exit status 2); a sweep stopped by Ctrl-C or SIGTERM writes its summary
  from the jobs that exist.

The decisions are :mod:`fishbench.sweeps.resume`'s; this module wires them into Hydra.
"""

import logging
import math
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobReturn
from hydra.plugins.launcher import Launcher
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from fishbench.compare.runs import read_metrics, sweep_run_dirs
from fishbench.errors import RunInterrupted
from fishbench.sweeps.resume import (
    SWEEP_FILE,
    JobPlan,
    SweepError,
    check_same_sweep,
    check_sweep_dir,
    describe_plans,
    plan_job,
    sweep_owner,
    trial_overrides,
)

log = logging.getLogger("fishbench")
MODULE = __name__


@dataclass
class FishbenchSweeperConf:
    _target_: str = f"{MODULE}.FishbenchSweeper"
    max_batch_size: Optional[int] = None
    params: Optional[Dict[str, str]] = None
    resume: bool = False
    retry_failed: bool = False


ConfigStore.instance().store(group="hydra/sweeper", name="fishbench", node=FishbenchSweeperConf,
                             provider="fishbench")


def checked_sweep_dir(config: DictConfig, resume: bool, arguments: list[str]) -> DictConfig | None:
    """Run the refusals of :mod:`fishbench.sweeps.resume` before anything is written; a refusal
    prints its paragraph and exits 2. Returns the saved sweep config when resuming."""
    sweep_dir = Path(config.hydra.sweep.dir)
    try:
        saved = check_sweep_dir(sweep_dir, resume, arguments)
        if saved is not None:
            check_same_sweep(saved, config, arguments)
        return saved
    except SweepError as err:
        print(f"fishbench: error: {err}", file=sys.stderr)
        sys.exit(2)


def start_sweep_dir(config: DictConfig, saved: DictConfig | None) -> Path:
    """Create the sweep dir and save the sweep's config in it once, when the sweep first starts
    (a resume keeps the original)."""
    sweep_dir = Path(config.hydra.sweep.dir)
    try:
        sweep_dir.mkdir(parents=True, exist_ok=True)
        if saved is None:
            OmegaConf.save(config, sweep_dir / SWEEP_FILE)
    except OSError as err:
        print(f"fishbench: error: hydra.sweep.dir '{sweep_dir}' cannot be written "
              f"({err.strerror or err}): a sweep writes its jobs and summary there. Choose a dir "
              "you can write to (hydra.sweep.dir=<dir>), or fix the permissions or mount of this "
              "one.", file=sys.stderr)
        sys.exit(2)
    return sweep_dir


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise RunInterrupted(signum)  # as a job's own handler does (fishbench.run.app.stop_on_signals)


@contextmanager
def summary_on_interrupt(sweep_dir: Path) -> Iterator[None]:
    """Ctrl-C or SIGTERM (a Slurm time limit) stops the sweep with the summary of the jobs that
    exist and the command that resumes it, exit status 130."""
    from fishbench.sweeps.summary import summarize_sweep

    previous = signal.getsignal(signal.SIGTERM)
    if previous is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield
    except KeyboardInterrupt as err:
        if sweep_run_dirs(sweep_dir):
            summarize_sweep(sweep_dir)
        log.error("sweep %s; summary of the jobs so far in %s. Resume it with `fishbench "
                  "resume %s`", str(err) or "interrupted by SIGINT", sweep_dir, sweep_dir)
        sys.exit(130)
    finally:
        if previous is signal.SIG_DFL:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)


def launch_plans(launcher: Launcher, plans: Sequence[JobPlan],
                 overrides: Sequence[Sequence[str]]) -> list[JobReturn]:
    """Launch the jobs of ``plans`` that run, each under its own number (``overrides[i]`` is
    job ``plans[i].num``'s): one launch per run of consecutive numbers."""
    running = [(plan, job) for plan, job in zip(plans, overrides) if plan.runs]
    returns: list[JobReturn] = []
    # along consecutive numbers, number minus position in ``running`` stays the same
    for _, group in groupby(enumerate(running), key=lambda item: item[1][0].num - item[0]):
        jobs = [pair for _, pair in group]
        batch = [[*job, *plan.extra_overrides] for plan, job in jobs]
        returns.extend(launcher.launch(batch, initial_job_idx=jobs[0][0].num))
    return returns


class FishbenchSweeper(BasicSweeper):
    """Hydra's grid sweeper (``a=1,2 b=x,y``), resumable (see the module's doc)."""

    def __init__(self, max_batch_size: Optional[int], params: Optional[Dict[str, str]] = None,
                 resume: bool = False, retry_failed: bool = False) -> None:
        super().__init__(max_batch_size, params)
        self.resume = resume
        self.retry_failed = retry_failed

    def sweep(self, arguments: List[str]) -> Any:
        assert self.config is not None and self.launcher is not None
        assert self.hydra_context is not None
        saved = checked_sweep_dir(self.config, self.resume, arguments)
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        overrides = parser.parse_overrides([*self._parse_config(), *arguments])
        batches = self.split_arguments(overrides, self.max_batch_size)
        sweep_dir = start_sweep_dir(self.config, saved)
        returns: list[Sequence[JobReturn]] = []
        first = 0
        with summary_on_interrupt(sweep_dir), sweep_owner(sweep_dir):
            for batch in batches:
                self.validate_batch_is_legal(batch)
                nums = range(first, first + len(batch))
                if saved is None:
                    plans = [JobPlan(num, "start", "new sweep") for num in nums]
                else:
                    plans = [plan_job(sweep_dir, num, self.retry_failed) for num in nums]
                    log.info("resuming the sweep in %s:\n%s", sweep_dir, describe_plans(plans))
                results = launch_plans(self.launcher, plans, batch)
                for result in results:
                    _ = result.return_value  # re-raises a job's exception, as Hydra's sweeper
                returns.append(results)
                first += len(batch)
        return returns


try:
    from hydra_plugins.hydra_optuna_sweeper.config import OptunaSweeperConf
    from hydra_plugins.hydra_optuna_sweeper.optuna_sweeper import OptunaSweeper
except ImportError:  # the optional extra "optuna" is not installed
    OptunaSweeper = None

if OptunaSweeper is not None:
    @dataclass
    class FishbenchOptunaSweeperConf(OptunaSweeperConf):
        _target_: str = f"{MODULE}.FishbenchOptunaSweeper"
        resume: bool = False
        retry_failed: bool = False

    ConfigStore.instance().store(group="hydra/sweeper", name="fishbench_optuna",
                                 node=FishbenchOptunaSweeperConf, provider="fishbench")

    class FishbenchOptunaSweeper(OptunaSweeper):
        """Hydra's Optuna sweeper, resumable: the study (in ``storage``, an SQLite file in the
        sweep dir) continues toward ``n_trials`` in total, trial ``n`` in job dir ``n``."""

        def __init__(self, resume: bool = False, retry_failed: bool = False,
                     **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.resume = resume
            self.retry_failed = retry_failed

        def sweep(self, arguments: List[str]) -> None:
            impl = self.sweeper
            if self.retry_failed:
                print("fishbench: error: hydra.sweeper.retry_failed is for grid sweeps: an Optuna "
                      "study keeps its failed trials (they tell the sampler where not to look). "
                      "Raise hydra.sweeper.n_trials to run more trials.", file=sys.stderr)
                sys.exit(2)
            saved = checked_sweep_dir(impl.config, self.resume, arguments)
            if saved is not None and not impl.storage:
                print("fishbench: error: this Optuna sweep kept its study in memory only "
                      "(hydra.sweeper.storage: null), so it cannot be resumed.", file=sys.stderr)
                sys.exit(2)
            sweep_dir = start_sweep_dir(impl.config, saved)
            if isinstance(impl.storage, str):
                stamp_storage(impl.storage)
            with summary_on_interrupt(sweep_dir), sweep_owner(sweep_dir):
                if saved is not None:
                    self._continue_study(sweep_dir)
                return impl.sweep(arguments)

        def _continue_study(self, sweep_dir: Path) -> None:
            """Finish the trials that were cut off, then let the sweep ask only for the trials
            still missing from ``n_trials``, numbered after the existing ones."""
            import optuna

            impl = self.sweeper
            try:
                study = optuna.load_study(study_name=impl.study_name, storage=impl.storage)
            except KeyError:  # stopped before the study was created
                return
            for trial in study.get_trials(deepcopy=False,
                                          states=(optuna.trial.TrialState.RUNNING,)):
                self._finish_trial(study, sweep_dir, trial)
            done = len(study.trials)
            impl.job_idx = done
            sampler = impl.config.hydra.sweeper.sampler
            if OmegaConf.select(sampler, "seed") is not None:  # not the first run's samples again
                impl.sampler = instantiate(sampler, seed=sampler.seed + done)
            log.info("resuming Optuna study %r in %s: %d trials done, %d to go", study.study_name,
                     sweep_dir, done, max(0, impl.n_trials - done))
            impl.n_trials = max(0, impl.n_trials - done)

        def _finish_trial(self, study: Any, sweep_dir: Path, trial: Any) -> None:
            """A trial the stopped sweep left running: continue its job (or read the result of
            a job that completed) and tell the study."""
            import optuna

            plan = plan_job(sweep_dir, trial.number, retry_failed=False)
            log.info("Optuna trial %d was cut off:\n%s", trial.number, describe_plans([plan]))
            if plan.runs:
                (result,) = launch_plans(self.sweeper.launcher, [plan],
                                         [trial_overrides(sweep_dir, trial)])
                value = _as_float(result.return_value)
            else:  # a job that completed (or failed) before the sweep was stopped
                metrics = read_metrics(sweep_dir / str(trial.number))
                value = _as_float(metrics.get("top1")) if metrics["status"] == "completed" \
                    else math.nan
            if math.isnan(value):
                study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
            else:
                study.tell(trial.number, value)


def stamp_storage(url: str) -> None:
    """Create the study's RDB storage (an SQLite file) once in autocommit mode.

    Optuna 2.10 (the newest that hydra-optuna-sweeper 1.3 accepts) records a new storage's
    schema version on a connection that SQLAlchemy 2 never commits, and then refuses the storage
    (``assert version is not None``); stamped once here, the storage works as usual."""
    import optuna

    alembic_log = logging.getLogger("alembic")
    level = alembic_log.level
    alembic_log.setLevel(logging.WARNING)  # its INFO lines would fill the sweep's log
    try:
        optuna.storages.RDBStorage(url, engine_kwargs={"isolation_level": "AUTOCOMMIT"})
    finally:
        alembic_log.setLevel(level)


def _as_float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan

