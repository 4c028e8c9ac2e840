"""Top-k accuracy and step timing."""

from __future__ import annotations

import numpy as np
import pytest

from fishbench.run.metrics import Accuracy, StepTimer, topk_correct


def test_topk_counts() -> None:
    logits = np.array([[0.1, 0.9, 0.0, 0.0, 0.0, 0.0],   # label 1: top1 hit
                       [0.5, 0.1, 0.4, 0.3, 0.2, 0.0],   # label 5: last -> miss at top5
                       [0.3, 0.1, 0.5, 0.0, 0.2, 0.4]])  # label 0: 3rd -> top5 hit
    labels = np.array([1, 5, 0])
    assert topk_correct(logits, labels, (1, 5)) == [1, 2]


def test_topk_larger_than_class_count_counts_all() -> None:
    assert topk_correct(np.eye(3), np.array([2, 0, 1]), (1, 5)) == [0, 3]


def test_accuracy_sums_batches_and_ranks() -> None:
    a, b = Accuracy(), Accuracy()
    a.update(np.eye(4), np.arange(4))
    b.update(np.eye(4), np.array([1, 1, 1, 1]))
    merged = Accuracy.from_counts([x + y for x, y in zip(a.counts, b.counts)])
    assert merged.percent() == [pytest.approx(62.5), pytest.approx(100.0)]


def test_step_timer_excludes_warmup() -> None:
    timer = StepTimer(warmup_steps=2)
    timer.intervals = []
    timer.lap(2)  # warm-up interval: excluded
    timer.intervals.append((4, 0.4, True))
    timer.intervals.append((4, 0.8, True))
    assert timer.intervals[0][2] is False
    assert timer.median_ms() == pytest.approx(150.0)
