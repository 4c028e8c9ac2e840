"""MindSpore on the CPU runs its 3x3 convolutions with oneDNN's fast kernels, not the reference one.

On AVX-512 CPUs the oneDNN of MindSpore 2.10 picks ``jit_uni_ncsp:conv+ref:any`` (its reference
kernel, ~100x slower) for 3x3 convolutions on plain NCHW tensors unless it is capped at AVX2,
which ``fishbench.backends.mindspore.device.configure`` does. Each
check runs in a fresh process: oneDNN fixes its ISA at its first kernel.
"""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import REPO
from tests.helpers.run_if import RunIf

pytestmark = RunIf(mindspore=True)

# configure() as a CPU run calls it, then one 3x3 convolution in graph mode.
PROBE = """
import mindspore as ms
import numpy as np
from hydra import compose, initialize_config_dir
from fishbench.backends.mindspore.device import configure
from fishbench.backends.mindspore.models.fishnet import conv2d
from fishbench.config import register_resolvers, validate

register_resolvers()
with initialize_config_dir(config_dir="{conf}", version_base="1.3"):
    configure(validate(compose("config", overrides=["backend=mindspore", "device=cpu"])))
conv = conv2d(32, 64, 3, padding=1)
conv(ms.Tensor(np.ones((8, 32, 16, 16), np.float32))).asnumpy()
"""


def convolution_kernels(extra_env: dict[str, str]) -> tuple[list[str], str]:
    """The oneDNN convolution implementations the probe ran, and the ISA oneDNN used."""
    env = {k: v for k, v in os.environ.items() if k != "ONEDNN_MAX_CPU_ISA"}
    env.update(ONEDNN_VERBOSE="1", PYTHONPATH=str(REPO), **extra_env)
    probe = PROBE.replace("{conf}", str(REPO / "conf"))
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True,
                         check=True, timeout=300).stdout
    kernels = [line.split(",")[6] for line in out.splitlines()
               if line.startswith("onednn_verbose") and ",exec,cpu,convolution," in line]
    isa = next(line.split(",isa:")[1] for line in out.splitlines()
               if line.startswith("onednn_verbose") and ",isa:" in line)
    return kernels, isa


def test_cpu_convolutions_avoid_the_onednn_reference_kernel() -> None:
    kernels, isa = convolution_kernels({})
    assert "AVX-512" not in isa, isa
    assert kernels, "oneDNN printed no convolution: ONEDNN_VERBOSE was not honoured"
    assert not any("ref" in k for k in kernels), kernels


def test_an_isa_cap_the_user_set_is_kept() -> None:
    _, isa = convolution_kernels({"ONEDNN_MAX_CPU_ISA": "AVX"})
    assert isa == "Intel AVX"
