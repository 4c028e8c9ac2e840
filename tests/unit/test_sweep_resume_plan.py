"""What resuming a sweep plans for each job from what its dir holds, how the jobs that run are
launched under their own numbers, and the refusals and Ctrl-C before any job."""

from __future__ import annotations

from pathlib import Path

import pytest

from fishbench.sweeps.resume import RESUME_OVERRIDE, JobPlan, SweepError, check_sweep_dir, plan_job
from hydra_plugins.fishbench_sweeps.resumable import launch_plans, summary_on_interrupt


def write_job(sweep_dir: Path, num: int, status: str | None, checkpoint: bool) -> None:
    job_dir = sweep_dir / str(num)
    (job_dir / "checkpoints").mkdir(parents=True)
    if status is not None:
        (job_dir / "metrics.json").write_text(f'{{"status": "{status}"}}')
    if checkpoint:
        (job_dir / "checkpoints" / "last.pt").write_bytes(b"x")


@pytest.mark.parametrize("status, checkpoint, retry_failed, action", [
    ("completed", True, True, "skip"),
    ("running", True, False, "continue"),  # its process is gone: interrupted
    ("interrupted", True, False, "continue"),
    ("running", False, False, "restart"),  # killed before its first checkpoint
    ("failed", True, False, "skip"),
    ("failed", True, True, "continue"),  # e.g. diverged: from its last good checkpoint
    ("failed", False, True, "restart"),  # e.g. a bad config: from scratch
    (None, False, False, "start"),  # Hydra made its dir, the job wrote nothing
])
def test_each_job_state_has_its_plan(tmp_path: Path, status: str | None, checkpoint: bool,
                                     retry_failed: bool, action: str) -> None:
    write_job(tmp_path, 0, status, checkpoint)
    assert plan_job(tmp_path, 0, retry_failed).action == action
    assert plan_job(tmp_path, 1, retry_failed).action == "start"  # no dir at all


def test_a_hydra_sweep_that_fishbench_did_not_start_is_not_resumed(tmp_path: Path) -> None:
    (tmp_path / "multirun.yaml").write_text("hydra:\n  callbacks: {}\n  sweeper: {}\n"
                                            "  overrides:\n    task: [a=1,2]\n    hydra: []\n")
    with pytest.raises(SweepError, match="that fishbench did not start"):
        check_sweep_dir(tmp_path, resume=True, task_overrides=["a=1,2"])
    with pytest.raises(SweepError, match="is not a sweep dir"):
        check_sweep_dir(tmp_path / "missing", resume=True, task_overrides=["a=1,2"])


class RecordingLauncher:
    """A launcher that records each launch (first job number, overrides) instead of running."""

    def __init__(self) -> None:
        self.launches: list[tuple[int, list[list[str]]]] = []

    def launch(self, batch: list[list[str]], initial_job_idx: int) -> list[int]:
        self.launches.append((initial_job_idx, batch))
        return list(range(initial_job_idx, initial_job_idx + len(batch)))


def test_jobs_that_run_are_launched_under_their_numbers_in_consecutive_groups() -> None:
    actions = ["start", "skip", "continue", "restart", "skip", "start"]
    plans = [JobPlan(num, action, "") for num, action in enumerate(actions)]
    launcher = RecordingLauncher()
    returns = launch_plans(launcher, plans, [[f"x={num}"] for num in range(len(actions))])
    assert launcher.launches == [(0, [["x=0"]]), (2, [["x=2", RESUME_OVERRIDE], ["x=3"]]),
                                 (5, [["x=5"]])]
    assert returns == [0, 2, 3, 5]


def test_ctrl_c_before_any_job_says_so_and_exits_130(tmp_path: Path, caplog) -> None:
    with pytest.raises(SystemExit) as exit_info, summary_on_interrupt(tmp_path):
        raise KeyboardInterrupt  # Ctrl-C: Python's own, empty KeyboardInterrupt
    assert exit_info.value.code == 130
    assert f"sweep interrupted by SIGINT; summary of the jobs so far in {tmp_path}" in caplog.text
    assert list(tmp_path.iterdir()) == []  # no job: no summary files
