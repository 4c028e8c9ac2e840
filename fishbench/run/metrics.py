"""Metric definitions shared by every backend: top-k accuracy and step timing."""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass, field

import numpy as np

TOPK = (1, 5)


def topk_correct(logits: np.ndarray, labels: np.ndarray, ks: tuple[int, ...] = TOPK) -> list[int]:
    """Count the samples whose label is among the ``k`` highest logits, for each ``k`` in ``ks``.

    ``k`` larger than the number of classes counts every sample (as top-5 of 10 digits would).
    Ties are broken by class index, so the count does not depend on the backend's sort.
    """
    labels = labels.reshape(-1)
    order = np.argsort(-logits, axis=1, kind="stable")
    hits = order == labels[:, None]
    return [int(hits[:, : min(k, logits.shape[1])].any(axis=1).sum()) for k in ks]


@dataclass
class Accuracy:
    """Top-k hit counts summed over batches (and over ranks, by summing ``counts``)."""

    ks: tuple[int, ...] = TOPK
    correct: list[int] = field(default_factory=lambda: [0] * len(TOPK))
    total: int = 0

    def update(self, logits: np.ndarray, labels: np.ndarray) -> None:
        """Count a batch; a negative label (an unreadable image's) is not scored."""
        for i, hit in enumerate(topk_correct(logits, labels, self.ks)):
            self.correct[i] += hit
        self.total += int((np.asarray(labels) >= 0).sum())

    @property
    def counts(self) -> list[int]:
        return [*self.correct, self.total]

    @classmethod
    def from_counts(cls, counts: list[int], ks: tuple[int, ...] = TOPK) -> "Accuracy":
        return cls(ks=ks, correct=[int(c) for c in counts[:-1]], total=int(counts[-1]))

    def percent(self) -> list[float]:
        """Top-k accuracies in percent (0-100); zeros when nothing was counted."""
        return [100.0 * c / self.total if self.total else 0.0 for c in self.correct]


class StepTimer:
    """Step times measured between synchronisation points, with no per-step host-device sync.

    Call :meth:`restart` where timing starts (an epoch's first step) and :meth:`lap` at each log
    point after the device has been synchronised, with the number of steps since the previous
    mark. The first ``warmup_steps`` of the run are excluded from :meth:`median_ms`.
    """

    def __init__(self, warmup_steps: int = 5) -> None:
        self.warmup_steps = warmup_steps
        self.steps_seen = 0
        self.intervals: list[tuple[int, float, bool]] = []  # (steps, seconds, after warm-up)
        self._mark = time.perf_counter()

    def restart(self) -> None:
        self._mark = time.perf_counter()

    def lap(self, steps: int) -> float:
        """Record ``steps`` steps since the last mark; return their mean time in ms."""
        now = time.perf_counter()
        seconds, self._mark = now - self._mark, now
        if steps <= 0:
            return float("nan")
        self.intervals.append((steps, seconds, self.steps_seen >= self.warmup_steps))
        self.steps_seen += steps
        return 1000.0 * seconds / steps

    def median_ms(self) -> float:
        """Median ms/step over the intervals after warm-up (all, if the run was shorter)."""
        measured = [iv for iv in self.intervals if iv[2]] or self.intervals
        per_step = [1000.0 * s / n for n, s, _ in measured for _ in range(n)]
        return statistics.median(per_step) if per_step else float("nan")


# Dense peak TFLOP/s per accelerator and precision (datasheets: H100/H200 SXM, A100 SXM, Ascend
# 910A). "fp32" is a run without amp: on NVIDIA PyTorch runs convolutions in TF32 by default, so
# it is counted against the TF32 tensor-core peak. The MindSpore trainer reports every Ascend 910
# as "Ascend910" (no 910B entry: nothing would name it).
PEAK_TFLOPS = {
    ("H100", "bf16"): 989.0, ("H100", "fp32"): 494.5,
    ("H200", "bf16"): 989.0, ("H200", "fp32"): 494.5,
    ("A100", "bf16"): 312.0, ("A100", "fp32"): 156.0,
    ("Ascend910", "fp16"): 256.0,
}
TRAIN_FLOPS_PER_FORWARD = 3.0  # forward + backward (twice the forward) per training image


def peak_tflops(accelerator: str | None, precision: str) -> float | None:
    """The dense peak of ``accelerator`` (a device name as the framework reports it) at
    ``precision``; None where the table has no entry (CPUs, other chips)."""
    if not accelerator:
        return None
    name = accelerator.replace(" ", "")
    for (chip, prec), peak in PEAK_TFLOPS.items():
        if chip in name and prec == precision:
            return peak
    return None


def utilisation(gflops_per_image: float | None, img_per_s: float, accelerator: str | None,
                precision: str, devices: int) -> float | None:
    """Model FLOPs utilisation of training: achieved FLOP/s over the devices' peak (None when
    the peak is unknown or no throughput was measured)."""
    peak = peak_tflops(accelerator, precision)
    if peak is None or gflops_per_image is None or math.isnan(img_per_s) or img_per_s <= 0:
        return None
    return TRAIN_FLOPS_PER_FORWARD * gflops_per_image * img_per_s / (peak * 1e3 * devices)
