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
    (``set_epoch`` each epoch; the epoch travels with the key, so persistent workers see it)."""

    def __init__(self, index: DatasetIndex, seed: int, rank: int, world_size: int,
                 shuffle: bool) -> None:
        self.index, self.seed, self.rank, self.world_size = index, seed, rank, world_size
        self.shuffle = shuffle
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _order(self) -> np.ndarray:
        return self.index.epoch_order(self.epoch, self.seed, self.rank, self.world_size, self.shuffle)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return iter([(self.epoch, p) for p in self._order().tolist()])

    def __len__(self) -> int:
        return len(self._order())


def batches(loader: Iterable) -> Iterator:
    """Iterate ``loader``; a :class:`DataError` raised in a worker process keeps its message
    (the DataLoader would otherwise prefix the worker's traceback to it)."""
    try:
        yield from loader
    except DataError as err:
        raise DataError(str(err).rsplit("DataError: ", 1)[-1].strip()) from None
