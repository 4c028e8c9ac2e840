"""PyTorch devices (cpu, cuda, npu), their process-group backends and mixed-precision settings."""

from __future__ import annotations

import importlib
import os

import torch

from fishbench.config import DeviceConfig
from fishbench.errors import DeviceError

DIST_BACKENDS = {"cpu": "gloo", "gpu": "nccl", "ascend": "hccl"}
# What CUDA reads when a process creates its context; a value in the environment wins. 32 hardware
# work queues (CUDA's default is 8): the input pipeline's streams (nvjpeg alone uses 14) then do
# not share a queue with the training stream, where their copies and kernels wait behind the
# training step already queued.
CUDA_ENVIRONMENT = {"CUDA_DEVICE_MAX_CONNECTIONS": "32"}


def import_torch_npu() -> None:
    """Import torch_npu (it registers the ``npu`` device), or stop with what is missing."""
    try:
        importlib.import_module("torch_npu")
    except ImportError as err:
        raise DeviceError(
            f"device=ascend with backend=pytorch needs torch_npu and Huawei's CANN toolkit, but "
            f"`import torch_npu` failed ({err}). On an Ascend host install CANN, then "
            "`pip install -e .[ascend]` in an environment with the CPU build of torch (torch_npu "
            "cannot share one with a CUDA build); elsewhere choose device=cpu or device=gpu."
        ) from None


def check_device(device: DeviceConfig, processes: int = 1) -> None:
    """Stop when the device's runtime is missing or the node has fewer cards than ``processes``
    (one process per card; CPU processes share the host's cores). Creates no device context;
    on CUDA it sets :data:`CUDA_ENVIRONMENT` for the context to come (:func:`prepare_cuda`)."""
    if device.name == "cpu":
        return
    if device.name == "gpu":
        prepare_cuda()
        if not torch.cuda.is_available():
            raise DeviceError(
                f"device=gpu, but PyTorch sees no CUDA GPU (torch {torch.__version__}, built for "
                f"CUDA {torch.version.cuda}). Check `nvidia-smi` and the driver, install a CUDA "
                "build of torch, or choose device=cpu."
            )
        count = torch.cuda.device_count()
    else:
        import_torch_npu()
        if not torch.npu.is_available():  # type: ignore[attr-defined]
            raise DeviceError("device=ascend: torch_npu is installed but sees no NPU. Check "
                              "`npu-smi info` and that CANN's set_env.sh was sourced.")
        count = torch.npu.device_count()  # type: ignore[attr-defined]
    needed = device.id + 1 if processes == 1 else processes
    if needed > count:
        raise DeviceError(
            f"device={device.name} needs {needed} device(s) (world.nproc_per_node={processes}, "
            f"device.id={device.id}), but this host has {count}. Use fewer processes per node or "
            "another device.id (one process per device)."
        )


def prepare_cuda() -> None:
    """Put :data:`CUDA_ENVIRONMENT` in this process's environment (where the user has not set
    the variable); call it before the process's first CUDA context."""
    for key, value in CUDA_ENVIRONMENT.items():
        os.environ.setdefault(key, value)


def select_device(device: DeviceConfig, local_rank: int = 0, world_size: int = 1) -> torch.device:
    """This process's torch device; ``device.id`` picks the card of a single-process run."""
    if device.name == "cpu":
        return torch.device("cpu")
    index = device.id if world_size == 1 else local_rank
    kind = "cuda" if device.name == "gpu" else "npu"
    getattr(torch, kind).set_device(index)
    return torch.device(kind, index)


def amp_dtype(device: torch.device) -> torch.dtype:
    """bf16 on CPU and CUDA; fp16 (with loss scaling) on Ascend NPUs."""
    return torch.float16 if device.type == "npu" else torch.bfloat16


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "npu":
        torch.npu.synchronize(device)  # type: ignore[attr-defined]
