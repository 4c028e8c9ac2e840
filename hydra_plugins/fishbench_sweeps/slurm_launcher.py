"""fishbench's Slurm launcher (``hydra/launcher=slurm``): Hydra's submitit launcher, plus

- job states from ``squeue`` where the cluster keeps no accounting: submitit asks ``sacct``,
  which there fails ("Bypassing sacct error ... status may be inaccurate") at every poll and
  never learns that a job ended without a result;
- a job that Slurm signals before its time limit or pre-emption (sbatch ``--signal``: submitit's
  signal, ``hydra.launcher.signal_delay_s`` ahead) stops ``interrupted`` with the checkpoints of
  its finished epochs and requeues itself (``scontrol requeue``), at most
  ``hydra.launcher.max_num_timeout`` times; the requeued job continues its own run dir from
  ``checkpoints/last``, as ``resume=true`` would;
- a job stopped by SIGTERM or SIGINT (``scancel``) ends ``interrupted`` and returns, so the sweep
  still writes its summary and ``fishbench resume <sweep dir>`` continues it.

The decisions are :mod:`fishbench.sweeps.slurm`'s and :mod:`fishbench.sweeps.resume`'s.
"""

from __future__ import annotations

import logging
import math
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any, Sequence

from hydra.core.utils import JobReturn, JobStatus

from fishbench.compare.runs import read_metrics
from fishbench.config import register_resolvers
from fishbench.errors import RunInterrupted
from fishbench.run.records import METRICS_FILE, write_metrics
from fishbench.sweeps.resume import plan_job
from fishbench.sweeps.slurm import RequeueLimit, accounting_enabled, check_requeue, queue_states

log = logging.getLogger("fishbench")
POLL_S = 60  # the longest wait between two looks at the queue (results are looked for each second)

try:
    from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher
    from submitit import JobEnvironment
    from submitit.slurm.slurm import SlurmInfoWatcher, SlurmJob
except ImportError:  # the optional extra "slurm" is not installed
    SlurmLauncher = None


def _raise_interrupt(signum: int, _frame: Any) -> None:
    raise RunInterrupted(signum)


def record_why(run_dir: Path, message: str) -> None:
    """Say in the run's ``metrics.json`` (left ``interrupted`` by the signal) what happens next."""
    if (run_dir / METRICS_FILE).is_file():
        write_metrics(run_dir, {**read_metrics(run_dir), "error": message})


if SlurmLauncher is not None:
    class QueueWatcher(SlurmInfoWatcher):
        """submitit's job states: from ``sacct`` where the cluster keeps accounting, else from
        ``squeue`` (a job it no longer lists has ended)."""

        _said_unreachable = False

        def update(self) -> None:
            if accounting_enabled():
                super().update()
                return
            pending = self._registered - self._finished
            if not pending:
                return
            self._num_calls += 1
            states = queue_states(pending)
            if states is None and not self._said_unreachable:
                log.warning("squeue does not answer; the sweep keeps waiting for its jobs' "
                            "results.")
                self._said_unreachable = True
            self._info_dict.update({job: {"State": state} for job, state in (states or {}).items()})
            self._last_status_check = time.time()
            self._finished.update(job for job in pending if self.is_done(job, mode="cache"))

    class FishbenchSlurmLauncher(SlurmLauncher):
        """Hydra's submitit Slurm launcher with the additions of this module's doc."""

        def launch(self, job_overrides: Sequence[Sequence[str]],
                   initial_job_idx: int) -> Sequence[JobReturn]:
            if not isinstance(SlurmJob.watcher, QueueWatcher):  # what submitit's jobs poll
                SlurmJob.watcher = QueueWatcher(delay_s=POLL_S)
            return super().launch(job_overrides, initial_job_idx)

        def __call__(self, sweep_overrides: list[str], job_dir_key: str, job_num: int,
                     job_id: str, singleton_state: Any) -> JobReturn:
            """Run job ``job_num`` in its Slurm allocation (continuing it after a requeue)."""
            register_resolvers()
            assert self.config is not None
            sweep_dir = Path(str(self.config.hydra.sweep.dir))
            restarts = int(os.environ.get("SLURM_RESTART_COUNT", "0"))
            overrides = list(sweep_overrides)
            if restarts:
                overrides += plan_job(sweep_dir, job_num, retry_failed=False).extra_overrides
            requeue_signal = signal.Signals[f"SIG{JobEnvironment.USR_SIG}"]
            signal.signal(requeue_signal, _raise_interrupt)
            try:
                return super().__call__(overrides, job_dir_key, job_num, job_id, singleton_state)
            except RunInterrupted as err:  # recorded in the run dir, logged by the run
                if err.signum == requeue_signal and JobEnvironment().global_rank == 0:
                    self._requeue(restarts, sweep_dir, job_num)
                return JobReturn(overrides=overrides, status=JobStatus.COMPLETED,
                                 _return_value=math.nan)

        def _requeue(self, restarts: int, sweep_dir: Path, job_num: int) -> None:
            """Requeue this job and exit (no result: the requeued job gives it), or, past the
            limit, say why the run stays interrupted."""
            run_dir = sweep_dir / str(job_num)
            try:
                check_requeue(restarts, int(self.params["max_num_timeout"]), run_dir, sweep_dir)
            except RequeueLimit as err:
                log.error("%s", err)
                record_why(run_dir, str(err))
                return
            job = JobEnvironment()
            signal.signal(signal.SIGTERM, signal.SIG_IGN)  # what Slurm sends as it requeues
            message = (f"requeueing Slurm job {job.job_id} (requeue {restarts + 1} of at most "
                       f"{self.params['max_num_timeout']}): it continues {run_dir} from its last "
                       f"checkpoint by itself")
            log.warning("%s", message)
            record_why(run_dir, f"The run was stopped by Slurm's signal; {message}.")
            job._requeue(int(self.params["max_num_timeout"]) - restarts - 1)
            sys.exit(0)
