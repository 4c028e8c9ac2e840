"""Where workers run: a world's processes against the devices there are, the CUDA queues a GPU
run asks for, a Slurm task per device becoming its worker."""

from __future__ import annotations

import os

import pytest
import torch

from fishbench.backends.pytorch.device import check_device
from fishbench.config import DeviceConfig, WorldConfig
from fishbench.errors import DeviceError
from fishbench.run.launch import LaunchError, slurm_worker_env
from tests.helpers.run_if import RunIf


def test_more_processes_than_gpus_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CUDA_DEVICE_MAX_CONNECTIONS", raising=False)  # check_device sets it
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    check_device(DeviceConfig(name="gpu"), 1)
    with pytest.raises(DeviceError, match="needs 2 device.*has 1"):
        check_device(DeviceConfig(name="gpu"), 2)
    with pytest.raises(DeviceError, match="device.id=3"):
        check_device(DeviceConfig(name="gpu", id=3), 1)


def test_gpu_runs_get_32_cuda_queues_unless_the_user_chose(monkeypatch: pytest.MonkeyPatch) -> None:
    """Set before the CUDA context (which reads it): the input pipeline's streams then do not
    share hardware queues with the training stream. A worker started later inherits it."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.delenv("CUDA_DEVICE_MAX_CONNECTIONS", raising=False)
    check_device(DeviceConfig(name="cpu"), 1)
    assert "CUDA_DEVICE_MAX_CONNECTIONS" not in os.environ
    check_device(DeviceConfig(name="gpu"), 1)
    assert os.environ["CUDA_DEVICE_MAX_CONNECTIONS"] == "32"
    monkeypatch.setenv("CUDA_DEVICE_MAX_CONNECTIONS", "8")
    check_device(DeviceConfig(name="gpu"), 1)
    assert os.environ["CUDA_DEVICE_MAX_CONNECTIONS"] == "8"


SLURM_TASK = {"SUBMITIT_EXECUTOR": "slurm", "SLURM_JOB_ID": "77", "SLURM_NTASKS": "4",
              "SLURM_JOB_NUM_NODES": "2", "SLURM_NODEID": "1", "SLURM_PROCID": "3",
              "SLURM_LOCALID": "1", "SLURM_JOB_NODELIST": "gpu[07-08]"}


@RunIf(slurm=True)
def test_a_slurm_task_per_device_becomes_that_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    assert slurm_worker_env(WorldConfig(nproc_per_node=2, nnodes=2)) is None  # not under Slurm
    for key, value in SLURM_TASK.items():
        monkeypatch.setenv(key, value)
    env = slurm_worker_env(WorldConfig(nproc_per_node=2, nnodes=2))
    assert env == {"RANK": "3", "LOCAL_RANK": "1", "WORLD_SIZE": "4", "LOCAL_WORLD_SIZE": "2",
                   "MASTER_ADDR": "gpu07", "MASTER_PORT": "29500"}
    with pytest.raises(LaunchError, match="Slurm started 4 tasks.*hydra/launcher=slurm"):
        slurm_worker_env(WorldConfig(nproc_per_node=8, nnodes=1))
