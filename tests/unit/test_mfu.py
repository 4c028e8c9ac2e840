"""Model FLOPs utilisation in ``metrics.json``: the peak table lookup and the formula (no training:
the CPU runs of the other tests only reach the "no peak" branch)."""

from __future__ import annotations

import math

import pytest

from fishbench.run.metrics import peak_tflops, utilisation


@pytest.mark.parametrize("accelerator, precision, peak", [
    ("NVIDIA H100 80GB HBM3", "bf16", 989.0),  # torch.cuda.get_device_name's form
    ("NVIDIA H200", "fp32", 494.5),
    ("NVIDIA A100-SXM4-80GB", "bf16", 312.0),
    ("Ascend910", "fp16", 256.0),              # the MindSpore trainer's name
    ("NVIDIA H100 80GB HBM3", "fp16", None),   # no entry for that precision
    ("Tesla V100-SXM2-32GB", "fp32", None),    # a chip the table lacks
    (None, "fp32", None),                      # the CPU
])
def test_peak_is_looked_up_by_chip_and_precision(accelerator, precision, peak) -> None:
    assert peak_tflops(accelerator, precision) == peak


def test_utilisation_is_training_flops_over_the_devices_peak() -> None:
    # 3 x 4 GFLOPs per image x 9,890 img/s = 118.68 TFLOP/s over 2 H100s at 989 TFLOP/s each.
    mfu = utilisation(4.0, 9890.0, "NVIDIA H100 80GB HBM3", "bf16", devices=2)
    assert mfu == pytest.approx(0.06)
    assert utilisation(4.0, math.nan, "NVIDIA H100", "bf16", 1) is None  # nothing measured
    assert utilisation(None, 9890.0, "NVIDIA H100", "bf16", 1) is None    # MindSpore: no count
    assert utilisation(4.0, 9890.0, None, "fp32", 1) is None              # the CPU: no peak
