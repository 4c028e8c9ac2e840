"""MindSpore device targets, execution modes and mixed-precision levels, and the runtime checks
that stop a run before any work when the GPU (CUDA 11 + cuDNN 8) or Ascend (CANN) stack is missing.
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import logging
import os
from pathlib import Path

import mindspore as ms
import numpy as np

from fishbench.config import RunConfig
from fishbench.errors import ConfigError, DeviceError

log = logging.getLogger("fishbench")

TARGETS = {"cpu": "CPU", "gpu": "GPU", "ascend": "Ascend"}
# What MindSpore's GPU plugin (built for CUDA 11.1/11.6) loads, and what each library belongs to.
GPU_LIBRARIES = (("libcuda.so.1", "the NVIDIA driver"), ("libcudart.so.11.0", "the CUDA 11.x runtime"),
                 ("libcudnn.so.8", "cuDNN 8"))
DEFAULT_AMP_LEVEL = {"cpu": "O0", "gpu": "O2", "ascend": "O3"}
# On AVX-512 CPUs the oneDNN 3.10 inside MindSpore 2.10 runs a 3x3 convolution on MindSpore's
# plain NCHW tensors with its reference kernel (``jit_uni_ncsp:conv+ref:any``), far slower than
# the im2col + GEMM kernel (``gemm:jit``) it picks when capped at AVX2 (benchmarks/mindspore_cpu.py).
ONEDNN_LIBRARY = "lib/libdnnl.so.3"  # MindSpore's own oneDNN, inside its package
ONEDNN_ISA_VARIABLE = "ONEDNN_MAX_CPU_ISA"  # the user's own cap, which is kept
ONEDNN_CPU_ISA_AVX2 = 0x7  # dnnl_cpu_isa_avx2 of oneDNN 3.x's dnnl_cpu_isa_t


def _plugin_error() -> str:
    """Why MindSpore could not load its device plugins (empty when it did not say)."""
    try:
        from mindspore._c_expression import MSContext  # noqa: PLC0415  (no public accessor)

        return MSContext.get_instance().load_plugin_error().strip()
    except (ImportError, AttributeError):
        return ""


def _missing_libraries(libraries: tuple[tuple[str, str], ...]) -> list[str]:
    missing = []
    for name, what in libraries:
        try:
            ctypes.CDLL(name)
        except OSError:
            missing.append(f"{what} ({name})")
    return missing


def check_device(cfg: RunConfig) -> None:
    """Stop with what is missing when MindSpore cannot run ``cfg`` on this host."""
    if cfg.device.name == "cpu" and amp_level(cfg) != "O0" and cfg.loss_scale is None:
        raise ConfigError(
            f"loss_scale=null asks for a dynamic loss scale, which MindSpore cannot run on the "
            f"CPU (backend.amp_level={amp_level(cfg)}). Set loss_scale=1024 (the recipes' fixed "
            "scale) or backend.amp_level=O0."
        )
    device = cfg.device.name
    if device == "gpu" and not ms.device_context.gpu.is_available():
        missing = _missing_libraries(GPU_LIBRARIES) or ["a library the plugin needs"]
        raise DeviceError(
            f"device=gpu with backend=mindspore needs an NVIDIA GPU with CUDA 11.x and cuDNN 8 "
            f"(MindSpore {ms.__version__} ships GPU plugins for CUDA 11.1 and 11.6), but its GPU "
            f"plugin cannot be loaded here: missing {', '.join(missing)}. Install the NVIDIA "
            "driver, CUDA 11.6 and cuDNN 8 and put their lib folders on LD_LIBRARY_PATH, or "
            "choose device=cpu (or backend=pytorch for a CUDA 12 host)."
        )
    if device == "ascend" and not ms.device_context.ascend.is_available():
        home = os.environ.get("ASCEND_HOME_PATH") or os.environ.get("ASCEND_TOOLKIT_HOME")
        found = f"ASCEND_HOME_PATH is {home}" if home else "ASCEND_HOME_PATH is not set"
        reason = _plugin_error().splitlines()
        raise DeviceError(
            f"device=ascend with backend=mindspore needs Huawei's CANN toolkit and an Ascend NPU "
            f"driver, but MindSpore {ms.__version__} cannot load its Ascend plugin ({found}; "
            f"{reason[0] if reason else 'no reason given'}). On an Ascend host install CANN "
            "matching this MindSpore and `source /usr/local/Ascend/ascend-toolkit/set_env.sh` "
            "before running; elsewhere choose device=cpu or device=gpu."
        )
    if device != "cpu":
        count = getattr(ms.device_context, device).device_count()
        if cfg.device.id >= count:
            raise DeviceError(f"device.id={cfg.device.id}, but MindSpore sees {count} {device} "
                              f"device(s) (0..{count - 1}) here. Choose another device.id.")


def execution_mode(cfg: RunConfig) -> str:
    """``backend.mode``, or graph: on GPU/Ascend as the model zoo, and on the CPU too, where a
    FishNet99 step ran faster than in PyNative and the compile paid off within the first epoch."""
    return cfg.backend.mode or "graph"


def amp_level(cfg: RunConfig) -> str:
    """``backend.amp_level``; ``auto`` is O0 unless ``amp=true``, then the device's level (O3 on
    Ascend as the model zoo, O2 on GPU, O0 on CPU whose fp16 kernels are slower than fp32)."""
    if cfg.backend.amp_level != "auto":
        return cfg.backend.amp_level
    return DEFAULT_AMP_LEVEL[cfg.device.name] if cfg.amp else "O0"


_configured = False  # MindSpore's device is set once per process


def configure(cfg: RunConfig) -> None:
    """Select the device, the execution mode and the seed of this process (once: MindSpore's
    device cannot change later), and on the CPU oneDNN's fast convolution kernels. Under
    ``msrun`` each worker's card follows its local rank."""
    global _configured
    if _configured:
        return
    if cfg.device.name == "cpu":
        _cap_onednn_isa()
    if cfg.device.name == "cpu" or cfg.world.size > 1:
        ms.set_device(TARGETS[cfg.device.name])
    else:
        ms.set_device(TARGETS[cfg.device.name], cfg.device.id)
    mode = execution_mode(cfg)
    ms.set_context(mode=ms.GRAPH_MODE if mode == "graph" else ms.PYNATIVE_MODE)
    ms.set_seed(cfg.seed)  # the same initial weights on every data-parallel rank
    _absorb_numpy_abi_error()
    _configured = True


def _cap_onednn_isa() -> None:
    """Cap MindSpore's oneDNN at AVX2 before its first kernel, unless the user set
    ``ONEDNN_MAX_CPU_ISA``. Through oneDNN's API rather than the environment, so that PyTorch's
    own oneDNN, in this process or its children, keeps its full ISA."""
    library = Path(ms.__file__).parent / ONEDNN_LIBRARY
    if ONEDNN_ISA_VARIABLE in os.environ or not library.exists():  # the user's cap; no oneDNN
        return
    try:
        status = ctypes.CDLL(str(library)).dnnl_set_max_cpu_isa(ONEDNN_CPU_ISA_AVX2)
    except (OSError, AttributeError) as err:
        status = str(err)
    if status != 0:  # 0 is dnnl_success; oneDNN refuses once its first kernel has run
        log.warning("Could not cap MindSpore's oneDNN at AVX2 (%s): on AVX-512 CPUs its 3x3 "
                    "convolutions may run ~100x slower. Set ONEDNN_MAX_CPU_ISA=AVX2 before "
                    "starting the run.", status)


def _absorb_numpy_abi_error() -> None:
    """Take MindSpore's one-off start-up failure under NumPy 2 here, not in the first real op.

    Wheels built against NumPy 1.x raise SystemError (a failed ``numpy.core.multiarray`` import)
    the first time an eager op parses a tuple argument; every later call works. A second
    failure is real and propagates.
    """
    probe = ms.Tensor(np.zeros((1, 1), np.float32))
    try:
        with contextlib.redirect_stderr(io.StringIO()):  # NumPy's page-long ABI warning
            ms.ops.reshape(probe, (1,))
    except SystemError:
        ms.ops.reshape(probe, (1,))
