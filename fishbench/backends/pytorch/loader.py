"""PyTorch input pipelines over the shared index, augmentation plan and decode engines.

Workers hand over uint8 crops (``cpu`` engine) or JPEG bytes (``gpu`` engine); the main process
moves each batch to the device (decoding it there with nvjpeg for the ``gpu`` engine) and runs the
float stage once per batch: flip, colour jitter, normalise, channels_last. On CUDA the next batch
is prepared on a side stream while the current one trains (as timm's PrefetchLoader).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Iterable, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, Sampler

from fishbench.backends.pytorch.augment import FloatStage
from fishbench.data.decode import BadFiles, Crop, Sample, SampleSource, pil_decode
from fishbench.data.images import synthetic_sample
from fishbench.data.index import DatasetIndex
from fishbench.data.plan import AugmentPlan
from fishbench.data.spec import DataSpec
from fishbench.errors import DataError

log = logging.getLogger("fishbench")
Batch = tuple[torch.Tensor, torch.Tensor]  # images (float, normalised, on the device), labels


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


@dataclass
class HostBatch:
    """A collated batch on the host: ``pixels`` uint8 NHWC (zeros where a sample is encoded),
    the encoded samples' bytes and crops at positions ``encoded_at``, and per-sample numbers."""

    pixels: torch.Tensor
    encoded: list[torch.Tensor]
    crops: list[Crop]
    encoded_at: list[int]
    labels: torch.Tensor
    aug: torch.Tensor
    files: np.ndarray
    skipped: np.ndarray

    def pin_memory(self) -> "HostBatch":
        self.pixels, self.labels, self.aug = (t.pin_memory() for t in (self.pixels, self.labels,
                                                                       self.aug))
        return self


def collate(samples: list[Sample]) -> HostBatch:
    size = next((s.crop.size if s.encoded else s.pixels.shape[0] for s in samples))
    pixels = np.zeros((len(samples), size, size, 3), np.uint8)
    encoded, crops, encoded_at = [], [], []
    for i, s in enumerate(samples):
        if s.encoded:
            encoded.append(torch.from_numpy(s.pixels.copy()))
            crops.append(s.crop)
            encoded_at.append(i)
        else:
            pixels[i] = s.pixels
    return HostBatch(torch.from_numpy(pixels), encoded, crops, encoded_at,
                     torch.tensor([s.label for s in samples]),
                     torch.from_numpy(np.stack([s.aug for s in samples])),
                     np.array([s.file for s in samples]), np.array([s.skipped for s in samples]))


def resize_crop(image: torch.Tensor, crop: Crop) -> torch.Tensor:
    """``crop`` of a CHW float image (on any device), antialiased bilinear, as float CHW 0..255."""
    left, top, right, bottom = crop.box
    if crop.resized != (image.shape[2], image.shape[1]):  # eval: resize all, then the centre
        image = F.interpolate(image[None], size=crop.resized[::-1], mode="bilinear",
                              antialias=True, align_corners=False)[0]
        return image[:, top:bottom, left:right]
    return F.interpolate(image[None, :, top:bottom, left:right], size=(crop.size, crop.size),
                         mode="bilinear", antialias=True, align_corners=False)[0]


class DeviceDecoder:
    """The ``gpu`` engine's device part: nvjpeg decodes a batch's JPEG bytes on the current
    stream, then each image is cropped and resized there. The host waits for the decode before
    its output is used (pytorch/vision#9606: the hardware decoder can race the caller's stream).
    A batch nvjpeg refuses is decoded on the CPU instead (``cpu_fallbacks`` counts the files)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.cpu_fallbacks = 0

    def __call__(self, batch: HostBatch, images: torch.Tensor) -> None:
        """Write the decoded crops into ``images`` (float NCHW 0..255 on the device)."""
        from torchvision.io import ImageReadMode, decode_jpeg

        try:
            decoded = decode_jpeg(batch.encoded, mode=ImageReadMode.RGB, device=self.device)
            torch.cuda.current_stream(self.device).synchronize()
            crops = [resize_crop(image.float(), crop) for image, crop in zip(decoded, batch.crops)]
        except RuntimeError:
            crops = [self._on_cpu(data, crop) for data, crop in zip(batch.encoded, batch.crops)]
        for i, crop in zip(batch.encoded_at, crops):
            images[i] = crop

    def _on_cpu(self, data: torch.Tensor, crop: Crop) -> torch.Tensor:
        self.cpu_fallbacks += 1
        try:
            pixels = pil_decode(data.numpy().tobytes(), lambda w, h: crop)
        except (OSError, ValueError, SyntaxError) as err:
            raise DataError(f"A JPEG of this batch cannot be decoded ({err}); run with "
                            "dataset.decoder=cpu to find and skip it.") from None
        return torch.from_numpy(pixels).to(self.device).permute(2, 0, 1).float()


class DeviceBatches:
    """The batches of a split as the model takes them: ``(images, labels)`` on the device.

    Counts the unreadable files met in ``bad_files`` (shared by train and val).
    """

    def __init__(self, loader: DataLoader, stage: FloatStage, device: torch.device,
                 bad_files: BadFiles, decoder: DeviceDecoder | None) -> None:
        self.loader, self.stage, self.device = loader, stage, device
        self.bad_files, self.decoder = bad_files, decoder
        self.sampler = loader.sampler
        self.index = loader.dataset.source.index  # type: ignore[attr-defined]

    def __len__(self) -> int:
        return len(self.loader)

    def _prepare(self, batch: HostBatch) -> Batch:
        self.bad_files.add(self.index, batch.files, batch.skipped)
        images = batch.pixels.to(self.device, non_blocking=True).permute(0, 3, 1, 2).float()
        if batch.encoded:
            self.decoder(batch, images)  # type: ignore[misc]
        aug = batch.aug.to(self.device, non_blocking=True)
        return self.stage(images, aug, batch.aug), batch.labels.to(self.device, non_blocking=True)

    def __iter__(self) -> Iterator[Batch]:
        host = batches(self.loader)
        if self.device.type != "cuda":
            for batch in host:
                yield self._prepare(batch)
            return
        stream = torch.cuda.Stream(self.device)
        current: Batch | None = None
        for batch in host:
            with torch.cuda.stream(stream):
                upcoming = self._prepare(batch)
            if current is not None:
                yield current
            torch.cuda.current_stream(self.device).wait_stream(stream)
            for tensor in upcoming:
                tensor.record_stream(torch.cuda.current_stream(self.device))
            current = upcoming
        if current is not None:
            yield current


class SyntheticBatches:
    """Random batches made once on the device and replayed (no host work per step)."""

    def __init__(self, samples: int, batch_size: int, size: int, num_classes: int, seed: int,
                 device: torch.device, memory_format: torch.memory_format, pool: int = 4) -> None:
        self.batches_per_epoch = max(samples // batch_size, 1)
        self.sampler = None
        self.pool = []
        for b in range(min(pool, self.batches_per_epoch)):
            pairs = [synthetic_sample(b * batch_size + i, size, num_classes, seed)
                     for i in range(batch_size)]
            images = torch.from_numpy(np.stack([p[0] for p in pairs]))
            self.pool.append((images.to(device, memory_format=memory_format),
                              torch.tensor([p[1] for p in pairs], device=device)))

    def __len__(self) -> int:
        return self.batches_per_epoch

    def __iter__(self) -> Iterator[Batch]:
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
                  rank: int, world_size: int, device: torch.device, decoder: str,
                  memory_format: torch.memory_format, bad_files: BadFiles):
    """Train and val batches of this rank; train drops the last partial batch. ``decoder`` is
    the resolved engine (``cpu`` or ``gpu``)."""
    if spec.train is None:
        size, classes = spec.train_transform.size, spec.num_classes
        train_n, val_n = spec.synthetic_sizes
        return (SyntheticBatches(train_n // world_size, batch_size, size, classes, seed, device,
                                 memory_format),
                SyntheticBatches(val_n // world_size, batch_size, size, classes, seed + 1, device,
                                 memory_format))
    encoded = decoder == "gpu"
    device_decoder = DeviceDecoder(device) if encoded else None

    def split(index: DatasetIndex, plan: AugmentPlan | None, shuffle: bool) -> DeviceBatches:
        source = SampleSource(index, bad_images, pil_decode, plan,
                              None if shuffle else spec.eval_transform, encoded)
        loader = DataLoader(PlanDataset(source), batch_size=batch_size,
                            sampler=EpochSampler(index, seed, rank, world_size, shuffle),
                            num_workers=num_workers, collate_fn=collate,
                            pin_memory=device.type == "cuda", drop_last=shuffle,
                            persistent_workers=num_workers > 0,
                            prefetch_factor=4 if num_workers > 0 else None)
        t = spec.train_transform if shuffle else spec.eval_transform
        stage = FloatStage(t.mean, t.std, device, memory_format,
                           flip=shuffle and spec.train_transform.hflip,
                           jitter=shuffle and any(spec.train_transform.color_jitter))
        return DeviceBatches(loader, stage, device, bad_files, device_decoder)

    return (split(spec.train, AugmentPlan(seed, spec.train_transform), True),
            split(spec.val, None, False))
