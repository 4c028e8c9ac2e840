"""PyTorch input pipelines built from the shared index and transform numbers."""

from __future__ import annotations

from typing import Iterable, Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler
from torchvision import transforms as T

from fishbench.data.images import SampleReader, synthetic_sample
from fishbench.data.index import DatasetIndex
from fishbench.data.spec import DataSpec
from fishbench.data.transforms import EvalTransform, TrainTransform
from fishbench.errors import DataError


def train_ops(t: TrainTransform) -> T.Compose:
    ops: list = [T.RandomResizedCrop(t.size, scale=t.scale, ratio=t.ratio)]
    if t.hflip:
        ops.append(T.RandomHorizontalFlip())
    if any(t.color_jitter):
        ops.append(T.ColorJitter(*t.color_jitter))
    return T.Compose([*ops, T.ToTensor(), T.Normalize(t.mean, t.std)])


def eval_ops(t: EvalTransform) -> T.Compose:
    return T.Compose([T.Resize(t.resize), T.CenterCrop(t.size), T.ToTensor(),
                      T.Normalize(t.mean, t.std)])


class IndexedImages(Dataset):
    """Samples of a :class:`DatasetIndex`: ``(image tensor, label, files skipped)``."""

    def __init__(self, index: DatasetIndex, bad_images: str, transform: T.Compose) -> None:
        self.reader = SampleReader(index, bad_images)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.reader.index)

    def __getitem__(self, position: int) -> tuple[torch.Tensor, int, int]:
        image, label, skipped = self.reader.read(position)
        return self.transform(image), label, skipped


class EpochSampler(Sampler[int]):
    """This rank's share of the index in the shared per-epoch order (``set_epoch`` each epoch)."""

    def __init__(self, index: DatasetIndex, seed: int, rank: int, world_size: int,
                 shuffle: bool) -> None:
        self.index, self.seed, self.rank, self.world_size = index, seed, rank, world_size
        self.shuffle = shuffle
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _order(self) -> np.ndarray:
        return self.index.epoch_order(self.epoch, self.seed, self.rank, self.world_size, self.shuffle)

    def __iter__(self) -> Iterator[int]:
        return iter(self._order().tolist())

    def __len__(self) -> int:
        return len(self._order())


class SyntheticBatches:
    """Random batches made once on the device and replayed (no host work per step)."""

    def __init__(self, samples: int, batch_size: int, size: int, num_classes: int, seed: int,
                 device: torch.device, shuffle: bool, pool: int = 4) -> None:
        self.batches_per_epoch = max(samples // batch_size, 1)
        self.sampler = None
        self.pool = []
        for b in range(min(pool, self.batches_per_epoch)):
            pairs = [synthetic_sample(b * batch_size + i, size, num_classes, seed)
                     for i in range(batch_size)]
            images = torch.from_numpy(np.stack([p[0] for p in pairs])).to(device)
            labels = torch.tensor([p[1] for p in pairs], device=device)
            self.pool.append((images, labels, torch.zeros(batch_size, dtype=torch.long)))

    def __len__(self) -> int:
        return self.batches_per_epoch

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        for b in range(self.batches_per_epoch):
            yield self.pool[b % len(self.pool)]


def batches(loader: Iterable) -> Iterator:
    """Iterate ``loader``; a :class:`DataError` raised in a worker process keeps its message
    (the DataLoader would otherwise prefix the worker's traceback to it)."""
    try:
        yield from loader
    except DataError as err:
        raise DataError(str(err).rsplit("DataError: ", 1)[-1].strip()) from None


def build_loaders(spec: DataSpec, batch_size: int, num_workers: int, bad_images: str, seed: int,
                  rank: int, world_size: int, device: torch.device):
    """Train and val loaders of this rank; train drops the last partial batch."""
    if spec.train is None:
        size, classes = spec.train_transform.size, spec.num_classes
        train_n, val_n = spec.synthetic_sizes
        return (SyntheticBatches(train_n // world_size, batch_size, size, classes, seed, device, True),
                SyntheticBatches(val_n // world_size, batch_size, size, classes, seed + 1, device, False))
    pin = device.type != "cpu"

    def loader(index: DatasetIndex, ops: T.Compose, shuffle: bool) -> DataLoader:
        sampler = EpochSampler(index, seed, rank, world_size, shuffle)
        return DataLoader(IndexedImages(index, bad_images, ops), batch_size=batch_size,
                          sampler=sampler, num_workers=num_workers, pin_memory=pin,
                          drop_last=shuffle, persistent_workers=num_workers > 0)

    return (loader(spec.train, train_ops(spec.train_transform), True),
            loader(spec.val, eval_ops(spec.eval_transform), False))
