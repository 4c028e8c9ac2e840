"""The PyTorch input pipelines of a run: :func:`build_loaders` gives a rank its train and val
batches, from image files (a DataLoader over the shared index and augmentation plan, then
:class:`~fishbench.backends.pytorch.input.device_batches.DeviceBatches`) or from the synthetic
split (:mod:`fishbench.data.synthetic`, on the device once)."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from functools import partial

import torch
from torch.utils.data import DataLoader

from fishbench.backends.pytorch.input.augment import FloatStage
from fishbench.backends.pytorch.input.collate import collate
from fishbench.backends.pytorch.input.cpu_decode import tensor_decode
from fishbench.backends.pytorch.input.dataset import EpochSampler, PlanDataset
from fishbench.backends.pytorch.input.device_batches import Batch, DeviceBatches
from fishbench.backends.pytorch.input.nvjpeg import DeviceDecoder, device_decodable_size
from fishbench.backends.pytorch.input.prefetch import Prefetcher
from fishbench.backends.pytorch.input.slots import WorkerSlots
from fishbench.data.decode import BadFiles, SampleSource
from fishbench.data.index import DatasetIndex
from fishbench.data.plan import AugmentPlan
from fishbench.data.spec import DataSpec
from fishbench.data.synthetic import SyntheticSplit, synthetic_splits

PREFETCH_FACTOR = 4  # batches each DataLoader worker works ahead


class SyntheticBatches:
    """A synthetic split with its pool of batches on the device, replayed (no host work per
    step; no sampler: every epoch is the same)."""

    sampler = None

    def __init__(self, split: SyntheticSplit, device: torch.device,
                 memory_format: torch.memory_format) -> None:
        self.split = split
        self.pool = [(torch.from_numpy(images).to(device, memory_format=memory_format),
                      torch.from_numpy(labels).to(device)) for images, labels in split.pool]

    def __len__(self) -> int:
        return len(self.split)

    def __iter__(self) -> Iterator[Batch]:
        return self.split.replay(self.pool)

    def stream(self, first: int, end: int, steps: int) -> Generator[Batch, None, None]:
        return self.split.replay_epochs(self.pool, first, end, steps)


def build_loaders(spec: DataSpec, *, batch_size: int, bad_images: str, seed: int, rank: int,
                  world_size: int, device: torch.device, memory_format: torch.memory_format,
                  bad_files: BadFiles
                  ) -> tuple[DeviceBatches | SyntheticBatches, DeviceBatches | SyntheticBatches]:
    """Train and val batches of this rank; train drops the last partial batch. The decode engine
    (``cpu`` or ``gpu``), its workers and nvjpeg's share are the spec's."""
    if spec.train is None:
        train, val = synthetic_splits(spec, batch_size, seed, world_size)
        return (SyntheticBatches(train, device, memory_format),
                SyntheticBatches(val, device, memory_format))
    device_share = spec.gpu_decode_share if spec.decoder == "gpu" else 0.0
    device_decoder = DeviceDecoder(device) if device_share else None
    workers = spec.num_workers

    def split(index: DatasetIndex, plan: AugmentPlan | None, shuffle: bool) -> DeviceBatches:
        source = SampleSource(index, bad_images, plan, None if shuffle else spec.eval_transform,
                              decode=tensor_decode, device_share=device_share,
                              device_size=device_decodable_size)
        # a worker's batches in use at once: those it works ahead, then after the DataLoader
        # hands one over, one in each step and those queued between them
        slots = WorkerSlots(workers, PREFETCH_FACTOR + 2 + Prefetcher.depth)
        # train: one iteration for the run's epochs (DeviceBatches.stream), whose workers shut
        # down with it; val: an iteration per evaluation, from workers kept in between
        loader = DataLoader(PlanDataset(source), batch_size=batch_size,
                            sampler=EpochSampler(index, seed, rank, world_size, shuffle),
                            num_workers=workers, collate_fn=partial(collate, slots=slots),
                            pin_memory=device.type == "cuda", drop_last=shuffle,
                            persistent_workers=workers > 0 and not shuffle,
                            prefetch_factor=PREFETCH_FACTOR if workers > 0 else None)
        t = spec.train_transform if shuffle else spec.eval_transform
        stage = FloatStage(t.mean, t.std, device, memory_format,
                           flip=shuffle and spec.train_transform.hflip,
                           jitter=shuffle and any(spec.train_transform.color_jitter))
        return DeviceBatches(loader, stage, device, bad_files, device_decoder, slots)

    return (split(spec.train, AugmentPlan(seed, spec.train_transform), True),
            split(spec.val, None, False))
