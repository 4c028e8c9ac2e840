"""A worker's batch for the main process: the samples collated into one of its shared-memory
slots (:mod:`~fishbench.backends.pytorch.input.slots`), and, on the device, the batch assembled
in sample order from the workers' crops."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from fishbench.backends.pytorch.input.slots import WorkerSlots
from fishbench.data.decode import Crop, Sample

Parts = list[tuple[torch.dtype, tuple[int, ...]]]  # tensors to lay out: dtype and shape


@dataclass
class HostBatch:
    """A collated batch on the host: ``pixels`` (uint8 NHWC) holds only the crops the workers
    decoded, ``encoded`` the other samples' JPEG bytes (one tensor, cut at ``encoded_ends``) with
    their ``crops``; ``positions`` is each one's place in the batch, the decoded crops' first.
    Then the per-sample numbers. A worker writes the tensors into one of its shared-memory
    ``slot``-s (:mod:`~fishbench.backends.pytorch.input.slots`), so handing them over copies nothing,
    and once the slot has come round, maps nothing new."""

    pixels: torch.Tensor
    encoded: torch.Tensor
    encoded_ends: list[int]
    crops: list[Crop]
    positions: torch.Tensor
    labels: torch.Tensor
    aug: torch.Tensor
    files: np.ndarray
    skipped: np.ndarray
    slot: int

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def encoded_at(self) -> list[int]:
        """The encoded samples' places in the batch."""
        return self.positions[len(self.pixels):].tolist()

    @property
    def storage(self) -> torch.UntypedStorage:
        """The slot's memory (``encoded`` stays in it when the rest is pinned)."""
        return self.encoded.untyped_storage()

    def pin_memory(self) -> HostBatch:
        self.pixels, self.positions, self.labels, self.aug = (
            t.pin_memory() for t in (self.pixels, self.positions, self.labels, self.aug))
        return self


def layout(parts: Parts) -> tuple[list[int], int]:
    """Byte offsets of ``parts`` laid out one after another, each at a multiple of 8 bytes, and
    the bytes they take."""
    offsets, end = [], 0
    for dtype, shape in parts:
        offsets.append(-(-end // 8) * 8)
        end = offsets[-1] + int(np.prod(shape)) * dtype.itemsize
    return offsets, end


def collate(samples: list[Sample], slots: WorkerSlots) -> HostBatch:
    """``samples`` as one :class:`HostBatch` in a slot of ``slots`` (plain memory outside a
    DataLoader worker)."""
    decoded = [i for i, s in enumerate(samples) if not s.encoded]
    encoded = [i for i, s in enumerate(samples) if s.encoded]
    size = samples[decoded[0]].pixels.shape[0] if decoded else samples[0].crop.size
    data = [samples[i].pixels for i in encoded]
    ends = np.cumsum([len(d) for d in data]).tolist()
    n, nbytes = len(samples), ends[-1] if ends else 0
    parts = [(torch.uint8, (len(decoded), size, size, 3)), (torch.uint8, (nbytes,)),
             (torch.int64, (n,)), (torch.int64, (n,)), (torch.float32, (n, *samples[0].aug.shape))]
    offsets, total = layout(parts)
    slot, storage = slots.take(total)
    pixels, files, positions, labels, aug = (
        torch.empty(0, dtype=dtype).set_(storage, offset // dtype.itemsize, shape)
        for (dtype, shape), offset in zip(parts, offsets))
    pixel_array = pixels.numpy()
    for row, i in enumerate(decoded):
        pixel_array[row] = samples[i].pixels
    if data:
        np.concatenate(data, out=files.numpy())
    positions.numpy()[:] = decoded + encoded
    labels.numpy()[:] = [s.label for s in samples]
    np.stack([s.aug for s in samples], out=aug.numpy())
    return HostBatch(pixels, files, ends, [samples[i].crop for i in encoded], positions, labels,
                     aug, np.array([s.file for s in samples]),
                     np.array([s.skipped for s in samples]), slot)


def assemble(pixels: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """The batch (``len(positions)`` uint8 NHWC images) with the workers' crops ``pixels`` at
    the first ``positions``, on their device; the other slots are left to
    :func:`~fishbench.backends.pytorch.input.nvjpeg.fill_encoded`. A batch the workers decoded
    whole is ``pixels`` itself."""
    if len(pixels) == len(positions):
        return pixels
    batch = pixels.new_empty((len(positions), *pixels.shape[1:]))
    return batch.index_copy_(0, positions[:len(pixels)], pixels) if len(pixels) else batch
