"""MindSpore input pipelines: ``mindspore.dataset`` over the shared index, plan and cpu engine.

Each epoch builds a ``GeneratorDataset`` that visits the shared per-epoch order
(:meth:`DatasetIndex.epoch_order`); its workers read samples through the shared
:class:`~fishbench.data.decode.SampleSource` (decode, the plan's crop, antialiased resize: uint8),
and the float stage (flip, jitter, normalise) runs once per batch in ``mindspore.ops``. The boxes,
flips and jitter factors are the plan's, so both backends see the same input for a config.
"""

from __future__ import annotations

from typing import Iterator

import mindspore as ms
import mindspore.dataset as ds
import numpy as np

from fishbench.backends.mindspore.input.augment import FloatStage
from fishbench.data.decode import BadFiles, SampleSource
from fishbench.data.images import synthetic_sample
from fishbench.data.index import DatasetIndex
from fishbench.data.plan import AugmentPlan
from fishbench.data.spec import DataSpec

COLUMNS = ["image", "label", "aug", "file", "skipped"]
Batch = tuple[ms.Tensor, np.ndarray]  # images NCHW float32 (normalised), labels int32


class PlanSource:
    """Random-access source of one epoch's samples for GeneratorDataset (``epoch`` set before
    each pipeline is built): ``(HWC uint8 crop, label, plan numbers, file, files skipped)``."""

    def __init__(self, source: SampleSource) -> None:
        self.source = source
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, position: int) -> tuple[np.ndarray, ...]:
        # Arrays, not numpy scalars: GeneratorDataset wraps each with np.array(copy=False).
        s = self.source.read(self.epoch, int(position))
        return (s.pixels, np.array(s.label, np.int32), s.aug, np.array(s.file, np.int64),
                np.array(s.skipped, np.int64))


class ImageBatches:
    """One split's batches for a rank: a fresh pipeline per epoch in the shared order."""

    def __init__(self, source: SampleSource, stage: FloatStage, batch_size: int, train: bool,
                 seed: int, rank: int, world_size: int, workers: int, bad_files: BadFiles) -> None:
        self.index: DatasetIndex = source.index
        self.source, self.stage, self.batch_size, self.train = PlanSource(source), stage, batch_size, train
        self.seed, self.rank, self.world_size, self.workers = seed, rank, world_size, workers
        self.bad_files = bad_files

    def _order(self, epoch: int) -> np.ndarray:
        return self.index.epoch_order(epoch, self.seed, self.rank, self.world_size, self.train)

    def __len__(self) -> int:
        n = len(self._order(0))
        return n // self.batch_size if self.train else -(-n // self.batch_size)

    def epoch(self, epoch: int) -> Iterator[Batch]:
        self.source.epoch = epoch
        data = ds.GeneratorDataset(self.source, COLUMNS, sampler=ds.SubsetSampler(
            self._order(epoch).tolist()), num_parallel_workers=max(self.workers, 1),
            python_multiprocessing=self.workers > 1)
        data = data.batch(self.batch_size, drop_remainder=self.train)
        for pixels, labels, aug, files, skipped in data.create_tuple_iterator(
                num_epochs=1, output_numpy=True):
            self.bad_files.add(self.index, files, skipped)
            yield self.stage(pixels, aug), labels


class SyntheticBatches:
    """A few random batches (the shared synthetic samples), made once and replayed."""

    def __init__(self, samples: int, batch_size: int, size: int, num_classes: int, seed: int,
                 pool: int = 4) -> None:
        self.batches = max(samples // batch_size, 1)
        self.pool: list[Batch] = []
        for b in range(min(pool, self.batches)):
            pairs = [synthetic_sample(b * batch_size + i, size, num_classes, seed)
                     for i in range(batch_size)]
            self.pool.append((ms.Tensor(np.stack([p[0] for p in pairs])),
                              np.array([p[1] for p in pairs], np.int32)))

    def __len__(self) -> int:
        return self.batches

    def epoch(self, epoch: int) -> Iterator[Batch]:
        for b in range(self.batches):
            yield self.pool[b % len(self.pool)]


def build_batches(spec: DataSpec, batch_size: int, workers: int, bad_images: str, seed: int,
                  rank: int, world_size: int, bad_files: BadFiles
                  ) -> tuple[ImageBatches | SyntheticBatches, ImageBatches | SyntheticBatches]:
    """Train and val batches of this rank; train drops the last partial batch."""
    if spec.train is None:
        size, classes = spec.train_transform.size, spec.num_classes
        train_n, val_n = spec.synthetic_sizes
        return (SyntheticBatches(train_n // world_size, batch_size, size, classes, seed),
                SyntheticBatches(val_n // world_size, batch_size, size, classes, seed + 1))
    t, e = spec.train_transform, spec.eval_transform
    train = SampleSource(spec.train, bad_images, AugmentPlan(seed, t), None)
    val = SampleSource(spec.val, bad_images, None, e)
    return (ImageBatches(train, FloatStage(t.mean, t.std, t.hflip, any(t.color_jitter)),
                         batch_size, True, seed, rank, world_size, workers, bad_files),
            ImageBatches(val, FloatStage(e.mean, e.std, False, False), batch_size, False, seed,
                         rank, world_size, workers, bad_files))
