"""A split's batches as the model takes them: each worker batch copied to the device (the
encoded samples decoded there by nvjpeg, then cropped and resized into it), then the float stage
once per batch: flip, colour jitter, normalise, channels_last. On CUDA two
:class:`~fishbench.backends.pytorch.input.prefetch.Prefetcher` threads run the two steps ahead,
so that the decode of one batch, the float work of the next and the training step overlap."""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader

from fishbench.backends.pytorch.input.augment import FloatStage
from fishbench.backends.pytorch.input.collate import HostBatch, assemble
from fishbench.backends.pytorch.input.dataset import batches
from fishbench.backends.pytorch.input.nvjpeg import DeviceDecoder
from fishbench.backends.pytorch.input.prefetch import Prefetcher
from fishbench.backends.pytorch.input.slots import WorkerSlots
from fishbench.data.decode import BadFiles

Batch = tuple[torch.Tensor, torch.Tensor]  # images (float, normalised, on the device), labels


@dataclass
class Uploaded:
    """A batch on its way: its tensors on the device, the encoded samples decoded by nvjpeg."""

    host: HostBatch
    pixels: torch.Tensor  # the batch, uint8 NHWC: the workers' crops, the encoded ones' slots
    aug: torch.Tensor
    labels: torch.Tensor
    decoded: list[torch.Tensor] | None

    def tensors(self) -> list[torch.Tensor]:
        return [self.pixels, self.aug, self.labels, *(self.decoded or [])]


class DeviceBatches:
    """The batches of a split as the model takes them: ``(images, labels)`` on the device.

    Two steps per batch: :meth:`upload` (copies, nvjpeg decode) and :meth:`finish` (crops,
    float stage), after which the batch's slot goes back to its worker (``slots``). On CUDA each
    step runs in a :class:`Prefetcher` thread. Counts the unreadable files met in ``bad_files``
    (shared by train and val). ``sampler`` is the loader's: one epoch (``set_epoch``) per
    iteration, or the run's training epochs in one (:meth:`stream`).
    """

    def __init__(self, loader: DataLoader, stage: FloatStage, device: torch.device,
                 bad_files: BadFiles, decoder: DeviceDecoder | None, slots: WorkerSlots) -> None:
        self.loader, self.stage, self.device = loader, stage, device
        self.bad_files, self.decoder, self.slots = bad_files, decoder, slots
        self.sampler = loader.sampler
        self.index = loader.dataset.source.index  # type: ignore[attr-defined]

    def __len__(self) -> int:
        """Batches of one whole epoch."""
        n, size = self.sampler.epoch_size, self.loader.batch_size
        return n // size if self.loader.drop_last else -(-n // size)

    def stream(self, first: int, end: int, steps: int) -> Generator[Batch, None, None]:
        """The batches of epochs ``first`` to ``end - 1`` as one iteration, the first ``steps``
        of each: the workers, decoders and prefetch threads carry on across the epochs'
        boundaries. ``close()`` it to stop them before its end."""
        self.sampler.set_epochs(first, end, steps * self.loader.batch_size)
        return iter(self)

    def upload(self, batch: HostBatch) -> tuple[Uploaded, list[torch.Tensor]]:
        self.bad_files.add(self.index, batch.files, batch.skipped, batch.labels.numpy())
        pixels, positions, aug = (t.to(self.device, non_blocking=True) for t in (
            batch.pixels, batch.positions, batch.aug))
        labels = batch.labels.to(self.device, non_blocking=True, copy=True)  # outlives the slot
        up = Uploaded(batch, assemble(pixels, positions), aug, labels,
                      self.decoder.decode(batch) if batch.crops else None)
        return up, up.tensors()

    def finish(self, up: Uploaded) -> tuple[Batch, list[torch.Tensor]]:
        if up.host.crops:
            self.decoder.fill(up.pixels, up.host, up.decoded)  # type: ignore[union-attr]
        batch = self.stage(up.pixels, up.aug), up.labels
        self.slots.release(up.host.slot, up.host.storage)
        return batch, list(batch)

    def __iter__(self) -> Generator[Batch, None, None]:
        """One iteration of the loader (the sampler's epochs); however it ends, its threads
        stop and its workers (unless persistent) shut down."""
        self.slots.reset()
        host = batches(self.loader)
        try:
            if self.device.type != "cuda":
                for batch in host:
                    yield self.finish(self.upload(batch)[0])[0]
                return
            uploads = Prefetcher(self.upload, host, self.device)
            ready = Prefetcher(self.finish, uploads, self.device)
            try:
                yield from ready
            finally:
                ready.stop()
                uploads.stop()
        finally:
            host.close()  # drops the loader's iterator: its workers shut down
