"""``RunIf``: one skip mark for what a test needs of the host (after lightning-hydra-template's
``tests/helpers/run_if.py``)::

    @RunIf(mindspore=True, onnx=True)
    def test_export_then_infer(): ...

    pytestmark = RunIf(slurm=True)          # a whole module

Each keyword is one requirement: ``True`` runs the test only where it holds, ``False`` only where
it does not (e.g. ``cuda=False``: the error for a missing GPU); the skip reason names every
requirement that failed and how to meet it.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
from collections.abc import Callable

import pytest

from conftest import IMAGENET_SAMPLE


def _installed(*modules: str) -> Callable[[], bool]:
    def check() -> bool:
        try:
            return all(importlib.util.find_spec(m) is not None for m in modules)
        except ModuleNotFoundError:  # a parent package (hydra_plugins) is missing
            return False
    return check


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _slurm_cluster() -> bool:
    """sbatch is on PATH and sinfo lists a node that takes jobs."""
    if shutil.which("sbatch") is None or shutil.which("sinfo") is None:
        return False
    try:
        states = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True,
                                timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return states.returncode == 0 and bool({"idle", "mix", "alloc"} & set(states.stdout.split()))


# requirement -> (does it hold here?, what it is, how to get it)
REQUIREMENTS: dict[str, tuple[Callable[[], bool], str, str]] = {
    "mindspore": (_installed("mindspore"), "mindspore", "pip install -e .[mindspore]"),
    "onnx": (_installed("onnx", "onnxruntime", "onnxscript"), "onnx, onnxruntime and onnxscript",
             "pip install -e .[onnx]"),
    "optuna": (_installed("hydra_plugins.hydra_optuna_sweeper"), "Hydra's Optuna sweeper",
               "pip install -e .[optuna]"),
    "slurm": (_installed("submitit", "hydra_plugins.hydra_submitit_launcher"),
              "Hydra's submitit (Slurm) launcher", "pip install -e .[slurm]"),
    "slurm_cluster": (_slurm_cluster, "a Slurm cluster with a usable node",
                      "`.ci/slurm.sh start` installs and starts one here"),
    "cuda": (_cuda, "a CUDA GPU", "run on a GPU host"),
    "torch_npu": (_installed("torch_npu"), "torch_npu",
                  "pip install -e .[ascend] on an Ascend host"),
    "imagenet_sample": (IMAGENET_SAMPLE.is_dir, f"the ImageNet sample at {IMAGENET_SAMPLE}",
                        "put ../shared/data/imagenet-sample beside the checkout"),
}


class RunIf:
    """A ``pytest.mark.skipif`` that holds the test to the requirements given as keywords."""

    def __new__(cls, **wanted: bool) -> pytest.MarkDecorator:
        unknown = set(wanted) - set(REQUIREMENTS)
        if unknown:
            raise TypeError(f"RunIf has no requirement {sorted(unknown)}; known: "
                            f"{', '.join(REQUIREMENTS)}")
        unmet = []
        for name, present in wanted.items():
            holds, what, how = REQUIREMENTS[name]
            if holds() != present:
                unmet.append(f"needs {what} ({how})" if present else f"needs no {what} (found one)")
        return pytest.mark.skipif(bool(unmet), reason="; ".join(unmet))
