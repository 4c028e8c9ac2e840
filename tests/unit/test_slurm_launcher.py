"""What a job of ``hydra/launcher=slurm`` asks of Slurm, the jobs' states without accounting, and
the requeue limit (no cluster needed)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from omegaconf import OmegaConf

from conftest import compose_config
from fishbench.sweeps import slurm
from fishbench.sweeps.slurm import GONE, RequeueLimit, check_requeue, queue_states
from tests.helpers.run_if import RunIf


def launcher_config(*overrides: str) -> dict:
    """The Slurm launcher's settings as `python run.py hydra/launcher=slurm OVERRIDES` composes
    them."""
    cfg = compose_config("hydra/launcher=slurm", *overrides, hydra=True)
    return OmegaConf.to_container(cfg.hydra.launcher, resolve=True)


@RunIf(slurm=True)
def test_gpus_only_for_gpu_runs_and_one_task_per_device(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(slurm, "node_cpus", lambda partition: 64)
    gpu = launcher_config("experiment=resnet50_8dev", "dataset.root=/d", "device=gpu",
                          "world.nnodes=2", "hydra.launcher.partition=big")
    assert gpu["_target_"].endswith("FishbenchSlurmLauncher")
    assert (gpu["nodes"], gpu["tasks_per_node"], gpu["gpus_per_node"]) == (2, 8, 8)
    assert gpu["cpus_per_task"] == 64 // 8  # the node's cores split among its 8 processes
    cpu = launcher_config("world.nproc_per_node=2")
    assert (cpu["tasks_per_node"], cpu["gpus_per_node"], cpu["cpus_per_task"]) == (2, None, 32)


@RunIf(slurm=True)
def test_cpus_per_task_follow_device_cpu_threads() -> None:
    assert launcher_config("device.cpu_threads=3")["cpus_per_task"] == 3


def test_node_cpus_ask_sinfo_for_the_partition(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def sinfo(cmd, **kwargs):
        calls.append(cmd)
        return subprocess.CompletedProcess(cmd, 0, stdout="48\n96+\n", stderr="")

    monkeypatch.setattr(subprocess, "run", sinfo)
    assert slurm.node_cpus("gpu") == 48
    assert calls == [["sinfo", "-h", "-o", "%c", "-p", "gpu"]]


@pytest.mark.parametrize(("returncode", "stdout", "stderr", "expected"), [
    (0, "41_0|RUNNING\n41_1|PENDING\n", "", {"41_0": "RUNNING", "41_1": "PENDING", "42": GONE}),
    (1, "", "slurm_load_jobs error: Invalid job id specified", {"41_0": GONE, "41_1": GONE,
                                                                "42": GONE}),
    (1, "", "slurm_load_jobs error: Unable to contact slurm controller", None),
])
def test_queue_states_from_squeue(monkeypatch: pytest.MonkeyPatch, returncode: int, stdout: str,
                                  stderr: str, expected: dict | None) -> None:
    """A job squeue no longer lists has ended (MinJobAge after its end); no controller: unknown."""
    asked = []

    def squeue(cmd, **kwargs):
        asked.append(cmd)
        return subprocess.CompletedProcess(cmd, returncode, stdout=stdout, stderr=stderr)

    monkeypatch.setattr(subprocess, "run", squeue)
    assert queue_states(["41_0", "41_1", "42"]) == expected
    assert asked[0][-2:] == ["-j", "41,42"]


def test_requeue_limit_names_the_key_and_how_to_continue(tmp_path: Path) -> None:
    check_requeue(2, 3, tmp_path / "0", tmp_path)  # a requeue left
    with pytest.raises(RequeueLimit) as err:
        check_requeue(3, 3, tmp_path / "0", tmp_path)
    assert "hydra.launcher.max_num_timeout=3" in str(err.value)
    assert f"fishbench resume {tmp_path}" in str(err.value)
