"""MindSpore input pipelines: ``mindspore.dataset`` over the shared index, plan and cpu engine.

A ``GeneratorDataset`` visits the shared per-epoch order (:meth:`DatasetIndex.epoch_order`) of
one epoch, or, for training, of the run's remaining epochs one after another; its workers read
samples through the shared :class:`~fishbench.data.decode.SampleSource` (decode, the plan's crop,
antialiased resize: uint8), and the float stage (flip, jitter, normalise) runs once per batch in
``mindspore.ops``. The boxes, flips and jitter factors are the plan's, so both backends see the
same input for a config.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator

import mindspore as ms
import mindspore.dataset as ds
import numpy as np

from fishbench.backends.mindspore.input.augment import FloatStage
from fishbench.data.decode import BadFiles, SampleSource
from fishbench.data.index import DatasetIndex
from fishbench.data.plan import AugmentPlan
from fishbench.data.spec import DataSpec
from fishbench.data.synthetic import SyntheticSplit, synthetic_splits

COLUMNS = ["image", "label", "aug", "file", "skipped"]
Batch = tuple[ms.Tensor, np.ndarray]  # images NCHW float32 (normalised), labels int32


class PlanSource:
    """Random-access source for GeneratorDataset over ``epochs``: key ``k`` is sample
    ``k % n`` of the ``k // n``-th of them (``n`` the split's samples), so that one pipeline
    spans several epochs: ``(HWC uint8 crop, label, plan numbers, file, files skipped)``."""

    def __init__(self, source: SampleSource, epochs: range) -> None:
        self.source, self.epochs = source, epochs

    def __len__(self) -> int:
        return len(self.epochs) * len(self.source)

    def __getitem__(self, key: int) -> tuple[np.ndarray, ...]:
        turn, position = divmod(int(key), len(self.source))
        # Arrays, not numpy scalars: GeneratorDataset wraps each with np.array(copy=False).
        s = self.source.read(self.epochs[turn], position)
        return (s.pixels, np.array(s.label, np.int32), s.aug, np.array(s.file, np.int64),
                np.array(s.skipped, np.int64))


class ImageBatches:
    """One split's batches for a rank in the shared order: an epoch, or several from one
    pipeline (:meth:`stream`)."""

    def __init__(self, source: SampleSource, stage: FloatStage, batch_size: int, train: bool,
                 seed: int, rank: int, world_size: int, workers: int, bad_files: BadFiles) -> None:
        self.index: DatasetIndex = source.index
        self.source, self.stage, self.batch_size, self.train = source, stage, batch_size, train
        self.seed, self.rank, self.world_size, self.workers = seed, rank, world_size, workers
        self.bad_files = bad_files

    def _order(self, epoch: int) -> np.ndarray:
        return self.index.epoch_order(epoch, self.seed, self.rank, self.world_size, self.train)

    def __len__(self) -> int:
        n = len(self._order(0))
        return n // self.batch_size if self.train else -(-n // self.batch_size)

    def epoch(self, epoch: int) -> Generator[Batch, None, None]:
        return self.stream(epoch, epoch + 1, len(self))

    def stream(self, first: int, end: int, steps: int) -> Generator[Batch, None, None]:
        """The batches of epochs ``first`` to ``end - 1`` from one pipeline, the first ``steps``
        of each: its workers carry on across the epochs' boundaries. ``close()`` it to stop
        them before its end."""
        epochs, n, cut = range(first, end), len(self.source), steps * self.batch_size
        keys = [turn * n + p for turn, epoch in enumerate(epochs)
                for p in self._order(epoch)[:cut].tolist()]
        data = ds.GeneratorDataset(PlanSource(self.source, epochs), COLUMNS,
                                   sampler=ds.SubsetSampler(keys),
                                   num_parallel_workers=max(self.workers, 1),
                                   python_multiprocessing=self.workers > 1)
        data = data.batch(self.batch_size, drop_remainder=self.train)
        batches = data.create_tuple_iterator(num_epochs=1, output_numpy=True)
        try:
            for pixels, labels, aug, files, skipped in batches:
                self.bad_files.add(self.index, files, skipped, labels)
                yield self.stage(pixels, aug), labels
        finally:
            batches.stop()


class SyntheticBatches:
    """A synthetic split with its pool of batches as MindSpore takes them, replayed."""

    def __init__(self, split: SyntheticSplit) -> None:
        self.split = split
        self.pool: list[Batch] = [(ms.Tensor(images), labels.astype(np.int32))
                                  for images, labels in split.pool]

    def __len__(self) -> int:
        return len(self.split)

    def epoch(self, epoch: int) -> Iterator[Batch]:
        return self.split.replay(self.pool)

    def stream(self, first: int, end: int, steps: int) -> Generator[Batch, None, None]:
        return self.split.replay_epochs(self.pool, first, end, steps)


def build_batches(spec: DataSpec, batch_size: int, workers: int, bad_images: str, seed: int,
                  rank: int, world_size: int, bad_files: BadFiles
                  ) -> tuple[ImageBatches | SyntheticBatches, ImageBatches | SyntheticBatches]:
    """Train and val batches of this rank; train drops the last partial batch."""
    if spec.train is None:
        train_split, val_split = synthetic_splits(spec, batch_size, seed, world_size)
        return SyntheticBatches(train_split), SyntheticBatches(val_split)
    t, e = spec.train_transform, spec.eval_transform
    train = SampleSource(spec.train, bad_images, AugmentPlan(seed, t), None)
    val = SampleSource(spec.val, bad_images, None, e)
    return (ImageBatches(train, FloatStage(t.mean, t.std, t.hflip, any(t.color_jitter)),
                         batch_size, True, seed, rank, world_size, workers, bad_files),
            ImageBatches(val, FloatStage(e.mean, e.std, False, False), batch_size, False, seed,
                         rank, world_size, workers, bad_files))
