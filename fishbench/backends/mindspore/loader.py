"""MindSpore input pipelines: ``mindspore.dataset`` over the shared index, reader and numbers.

Each epoch builds a ``GeneratorDataset`` that visits the shared per-epoch order
(:meth:`DatasetIndex.epoch_order`) through the shared :class:`SampleReader`, then applies
``mindspore.dataset.vision`` ops built from the shared transform numbers. The ops run on PIL
images, as torchvision's do, so both backends resample with the same (antialiased) filter.
"""

from __future__ import annotations

from typing import Iterator

import mindspore.dataset as ds
import numpy as np
from mindspore.dataset import vision

from fishbench.data.images import SampleReader, synthetic_sample
from fishbench.data.index import DatasetIndex
from fishbench.data.spec import DataSpec
from fishbench.data.transforms import EvalTransform, TrainTransform

COLUMNS = ["image", "label", "skipped"]
Batch = tuple[np.ndarray, np.ndarray, np.ndarray]  # images NCHW float32, labels int32, skipped


def train_ops(t: TrainTransform) -> list:
    ops: list = [vision.ToPIL(), vision.RandomResizedCrop(t.size, t.scale, t.ratio)]
    if t.hflip:
        ops.append(vision.RandomHorizontalFlip())
    if any(t.color_jitter):
        ops.append(vision.RandomColorAdjust(*t.color_jitter))
    return [*ops, vision.ToTensor(), vision.Normalize(t.mean, t.std, is_hwc=False)]


def eval_ops(t: EvalTransform) -> list:
    return [vision.ToPIL(), vision.Resize(t.resize), vision.CenterCrop(t.size), vision.ToTensor(),
            vision.Normalize(t.mean, t.std, is_hwc=False)]


class IndexedSource:
    """Random-access source of ``(HWC uint8 image, label, files skipped)`` for GeneratorDataset."""

    def __init__(self, index: DatasetIndex, bad_images: str) -> None:
        self.reader = SampleReader(index, bad_images)

    def __len__(self) -> int:
        return len(self.reader.index)

    def __getitem__(self, position: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        # Arrays, not numpy scalars: GeneratorDataset wraps each with np.array(copy=False).
        image, label, skipped = self.reader.read(int(position))
        return np.asarray(image, np.uint8), np.array(label, np.int32), np.array(skipped, np.int32)


class ImageBatches:
    """One split's batches for a rank: a fresh pipeline per epoch in the shared order."""

    def __init__(self, index: DatasetIndex, ops: list, batch_size: int, train: bool,
                 bad_images: str, seed: int, rank: int, world_size: int, workers: int) -> None:
        self.index, self.ops, self.batch_size, self.train = index, ops, batch_size, train
        self.source = IndexedSource(index, bad_images)
        self.seed, self.rank, self.world_size, self.workers = seed, rank, world_size, workers

    def _order(self, epoch: int) -> np.ndarray:
        return self.index.epoch_order(epoch, self.seed, self.rank, self.world_size, self.train)

    def __len__(self) -> int:
        n = len(self._order(0))
        return n // self.batch_size if self.train else -(-n // self.batch_size)

    def epoch(self, epoch: int) -> Iterator[Batch]:
        if self.train:
            # One pipeline seed per (seed, epoch): a resumed run augments as an uninterrupted one.
            ds.config.set_seed((self.seed * 100_003 + epoch) % 2**32)
        workers = max(self.workers, 1)
        data = ds.GeneratorDataset(self.source, COLUMNS, sampler=ds.SubsetSampler(
            self._order(epoch).tolist()), num_parallel_workers=workers,
            python_multiprocessing=self.workers > 1)
        data = data.map(self.ops, input_columns="image", num_parallel_workers=workers,
                        python_multiprocessing=self.workers > 1)
        data = data.batch(self.batch_size, drop_remainder=self.train)
        yield from data.create_tuple_iterator(num_epochs=1, output_numpy=True)


class SyntheticBatches:
    """A few random batches (the shared synthetic samples), made once and replayed."""

    def __init__(self, samples: int, batch_size: int, size: int, num_classes: int, seed: int,
                 pool: int = 4) -> None:
        self.batches = max(samples // batch_size, 1)
        self.pool: list[Batch] = []
        for b in range(min(pool, self.batches)):
            pairs = [synthetic_sample(b * batch_size + i, size, num_classes, seed)
                     for i in range(batch_size)]
            self.pool.append((np.stack([p[0] for p in pairs]),
                              np.array([p[1] for p in pairs], np.int32),
                              np.zeros(batch_size, np.int32)))

    def __len__(self) -> int:
        return self.batches

    def epoch(self, epoch: int) -> Iterator[Batch]:
        for b in range(self.batches):
            yield self.pool[b % len(self.pool)]


def build_batches(spec: DataSpec, batch_size: int, workers: int, bad_images: str, seed: int,
                  rank: int, world_size: int) -> tuple[ImageBatches | SyntheticBatches,
                                                       ImageBatches | SyntheticBatches]:
    """Train and val batches of this rank; train drops the last partial batch."""
    if spec.train is None:
        size, classes = spec.train_transform.size, spec.num_classes
        train_n, val_n = spec.synthetic_sizes
        return (SyntheticBatches(train_n // world_size, batch_size, size, classes, seed),
                SyntheticBatches(val_n // world_size, batch_size, size, classes, seed + 1))
    return (ImageBatches(spec.train, train_ops(spec.train_transform), batch_size, True,
                         bad_images, seed, rank, world_size, workers),
            ImageBatches(spec.val, eval_ops(spec.eval_transform), batch_size, False,
                         bad_images, seed, rank, world_size, workers))
