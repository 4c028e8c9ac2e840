"""What the DataLoader reads: a split's samples by ``(epoch, position)``, this rank's share of
the shared per-epoch order, and its batches with a worker's :class:`DataError` kept readable."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
from torch.utils.data import Dataset, Sampler

from fishbench.data.decode import Sample, SampleSource
from fishbench.data.index import DatasetIndex
from fishbench.errors import DataError


class PlanDataset(Dataset):
    """Samples of a :class:`SampleSource`, looked up by ``(epoch, position)``."""

    def __init__(self, source: SampleSource) -> None:
        self.source = source

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, key: tuple[int, int]) -> Sample:
        return self.source.read(*key)


class EpochSampler(Sampler[tuple[int, int]]):
    """This rank's share of the index in the shared per-epoch order, as ``(epoch, position)``
    keys (the epoch travels with the key, so workers see it). One epoch (``set_epoch``), or
    several one after another (``set_epochs``): one iteration then spans the run's epochs, so
    that the workers carry on across their boundaries."""

    def __init__(self, index: DatasetIndex, seed: int, rank: int, world_size: int,
                 shuffle: bool) -> None:
        self.index, self.seed, self.rank, self.world_size = index, seed, rank, world_size
        self.shuffle = shuffle
        self.epochs = range(1)
        self.keys_per_epoch: int | None = None

    def set_epoch(self, epoch: int) -> None:
        self.set_epochs(epoch, epoch + 1)

    def set_epochs(self, first: int, end: int, keys_per_epoch: int | None = None) -> None:
        """Epochs ``first`` to ``end - 1``, each cut to its first ``keys_per_epoch`` keys."""
        self.epochs, self.keys_per_epoch = range(first, end), keys_per_epoch

    @property
    def epoch_size(self) -> int:
        """Keys of one whole epoch (the same in every epoch)."""
        return len(self._whole(0))

    def _whole(self, epoch: int) -> np.ndarray:
        return self.index.epoch_order(epoch, self.seed, self.rank, self.world_size, self.shuffle)

    def _order(self, epoch: int) -> np.ndarray:
        return self._whole(epoch)[:self.keys_per_epoch]

    def __iter__(self) -> Iterator[tuple[int, int]]:
        for epoch in self.epochs:
            yield from ((epoch, p) for p in self._order(epoch).tolist())

    def __len__(self) -> int:
        return len(self.epochs) * len(self._order(0))


def batches(loader: Iterable) -> Iterator:
    """Iterate ``loader``; a :class:`DataError` raised in a worker process keeps its message
    (the DataLoader would otherwise prefix the worker's traceback to it)."""
    try:
        yield from loader
    except DataError as err:
        raise DataError(str(err).rsplit("DataError: ", 1)[-1].strip()) from None
