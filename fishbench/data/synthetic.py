"""The synthetic dataset (``dataset=synthetic``): random images and labels, reproducible from
the seed, with no input cost. A split's few batches are made once, as numpy arrays, and replayed
for every step: a backend turns them into device tensors once, so a step does no host work (the
reference the GPU benchmarks compare real input against)."""

from __future__ import annotations

from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import TypeVar

import numpy as np

from fishbench.data.spec import DataSpec

T = TypeVar("T")
POOL = 4  # distinct batches of a split, replayed in turn
NumpyBatch = tuple[np.ndarray, np.ndarray]  # images NCHW float32 (normalised), labels int64


def synthetic_sample(position: int, size: int, num_classes: int, seed: int) -> tuple[np.ndarray, int]:
    """A reproducible random CHW float32 image (already normalised) and label for ``position``."""
    rng = np.random.default_rng([seed, position])
    return rng.standard_normal((3, size, size), dtype=np.float32), int(rng.integers(num_classes))


@dataclass(frozen=True)
class SyntheticSplit:
    """One rank's split: ``batches`` per epoch, replaying ``pool`` in turn."""

    batches: int
    pool: list[NumpyBatch]

    def __len__(self) -> int:
        return self.batches

    def replay(self, pool: Sequence[T]) -> Iterator[T]:
        """One epoch's batches taken in turn from ``pool``: this split's pool as a backend
        holds it (on its device)."""
        for b in range(self.batches):
            yield pool[b % len(pool)]

    def replay_epochs(self, pool: Sequence[T], first: int, end: int,
                      steps: int) -> Generator[T, None, None]:
        """Epochs ``first`` to ``end - 1`` (all alike), the first ``steps`` batches of each."""
        for _ in range(first, end):
            yield from islice(self.replay(pool), steps)


def synthetic_split(samples: int, batch_size: int, size: int, num_classes: int,
                    seed: int) -> SyntheticSplit:
    """``samples // batch_size`` batches per epoch (at least one), the first :data:`POOL` of them
    made from :func:`synthetic_sample`."""
    batches = max(samples // batch_size, 1)
    pool = []
    for b in range(min(POOL, batches)):
        pairs = [synthetic_sample(b * batch_size + i, size, num_classes, seed)
                 for i in range(batch_size)]
        pool.append((np.stack([p[0] for p in pairs]), np.array([p[1] for p in pairs], np.int64)))
    return SyntheticSplit(batches, pool)


def synthetic_splits(spec: DataSpec, batch_size: int, seed: int,
                     world_size: int) -> tuple[SyntheticSplit, SyntheticSplit]:
    """Train and val of one rank: each rank gets its share of ``dataset.train_samples`` and
    ``dataset.val_samples``; val draws from ``seed + 1``."""
    size, classes = spec.train_transform.size, spec.num_classes
    train_n, val_n = spec.synthetic_sizes
    return (synthetic_split(train_n // world_size, batch_size, size, classes, seed),
            synthetic_split(val_n // world_size, batch_size, size, classes, seed + 1))
