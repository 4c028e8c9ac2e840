"""PyTorch input pipelines over the shared index, augmentation plan and decode engines.

Workers hand over uint8 crops (``cpu`` engine: :mod:`~fishbench.backends.pytorch.input.cpu_decode`) or
JPEG bytes (``gpu`` engine) in shared-memory slots they reuse
(:mod:`~fishbench.backends.pytorch.input.slots`); the main process moves each batch to the device (for
the ``gpu`` engine decoding it there with nvjpeg, then cropping and resizing it with one batched
kernel, :mod:`~fishbench.backends.pytorch.input.resize`) and runs the float stage once per batch: flip,
colour jitter, normalise, channels_last. On CUDA a prefetch thread prepares the next batches on
its own stream while the current one trains (timm's PrefetchLoader copies on a side stream; the
thread is needed too because ``decode_jpeg`` on the GPU blocks its caller until the decode has
finished, with the GIL released).
"""

from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable, Iterable, Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from fishbench.backends.pytorch.input.augment import FloatStage
from fishbench.backends.pytorch.input.cpu_decode import tensor_decode
from fishbench.backends.pytorch.input.slots import WorkerSlots
from fishbench.data.decode import BadFiles, Crop, Sample, SampleSource, pil_decode
from fishbench.data.images import READ_ERRORS, synthetic_sample
from fishbench.data.index import DatasetIndex
from fishbench.data.plan import AugmentPlan
from fishbench.data.spec import DataSpec
from fishbench.errors import DataError

log = logging.getLogger("fishbench")
Batch = tuple[torch.Tensor, torch.Tensor]  # images (float, normalised, on the device), labels
PIPELINE_STREAM_PRIORITY = 0  # the prefetch threads' CUDA streams (0: the default, lowest)
PREFETCH_FACTOR = 4  # batches each DataLoader worker works ahead


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

    def pin_memory(self) -> "HostBatch":
        self.pixels, self.positions, self.labels, self.aug = (
            t.pin_memory() for t in (self.pixels, self.positions, self.labels, self.aug))
        return self


Parts = list[tuple[torch.dtype, tuple[int, ...]]]  # tensors to lay out: dtype and shape


def layout(parts: Parts) -> tuple[list[int], int]:
    """Byte offsets of ``parts`` laid out one after another, each at a multiple of 8 bytes, and
    the bytes they take."""
    offsets, end = [], 0
    for dtype, shape in parts:
        offsets.append(-(-end // 8) * 8)
        end = offsets[-1] + int(np.prod(shape)) * dtype.itemsize
    return offsets, end


def collate(samples: list[Sample], slots: WorkerSlots) -> HostBatch:
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
    the first ``positions``, on their device; the other slots are left to :func:`fill_encoded`.
    A batch the workers decoded whole is ``pixels`` itself."""
    if len(pixels) == len(positions):
        return pixels
    batch = pixels.new_empty((len(positions), *pixels.shape[1:]))
    return batch.index_copy_(0, positions[:len(pixels)], pixels) if len(pixels) else batch


def fill_encoded(batch: torch.Tensor, crops: list[Crop], encoded_at: list[int],
                 decoded: list[torch.Tensor] | None, decode_on_host: Callable[[], np.ndarray]
                 ) -> None:
    """Write the encoded samples' ``crops`` into ``batch`` (uint8 NHWC on the device, the
    workers' crops already in place) at ``encoded_at``: from their ``decoded`` images (uint8 CHW
    on the device), or, where nvjpeg refused them (None), from ``decode_on_host``'s crops."""
    if decoded is None:
        at = torch.tensor(encoded_at, device=batch.device)
        batch[at] = torch.from_numpy(decode_on_host()).to(batch.device)
    else:
        from fishbench.backends.pytorch.input.resize import crop_resize_into

        crop_resize_into(batch, decoded, crops, encoded_at)


class DeviceDecoder:
    """The ``gpu`` engine's device part: nvjpeg decodes a batch's JPEG bytes (:meth:`decode`),
    then :meth:`fill` crops and resizes them into the batch (:func:`fill_encoded`). A batch nvjpeg
    refuses is decoded on the CPU instead (``cpu_fallbacks`` counts the files).

    ``decode_jpeg`` runs on a stream of its own that never gets a kernel (pytorch/vision#9606:
    the decoder allocates its outputs on the caller's stream but writes them from a private
    stream that does not wait for the caller's, so on a busy stream it can be handed a block that
    queued kernels still read). The caller's stream waits for the decode; the images are used on
    the stream that crops them, where the :class:`Prefetcher` handing them over
    ``record_stream``-s them, so their blocks return to the decode stream only after that use.
    The call blocks until the decode has finished.

    nvjpeg copies each file to the device on its own: the files are first copied, in one piece,
    into pinned memory (:meth:`_staged`), so that those copies are DMA; from pageable memory the
    driver stages each one through a buffer of its own on the decoding thread."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.cpu_fallbacks = 0
        self.stream = torch.cuda.Stream(device)
        self.pinned = [torch.empty(0, dtype=torch.uint8) for _ in range(2)]

    def decode(self, batch: HostBatch) -> list[torch.Tensor] | None:
        """The encoded samples as uint8 CHW images on the device; None when nvjpeg refused."""
        from torchvision.io import ImageReadMode, decode_jpeg

        current = torch.cuda.current_stream(self.device)
        try:
            with torch.cuda.stream(self.stream):
                decoded = decode_jpeg(self._files(self._staged(batch.encoded), batch.encoded_ends),
                                      mode=ImageReadMode.RGB, device=self.device)
        except RuntimeError as err:
            log.warning("nvjpeg refused a batch (%s); decoding its %d JPEGs on the CPU",
                        err, len(batch.crops))
            return None
        current.wait_stream(self.stream)
        return decoded

    def fill(self, up: "Uploaded") -> None:
        """Complete ``up.pixels`` with the encoded samples' crops (see :func:`fill_encoded`)."""
        host = up.host
        fill_encoded(up.pixels, host.crops, host.encoded_at, up.decoded,
                     lambda: self._on_cpu(self._files(host.encoded, host.encoded_ends), host.crops))

    def _staged(self, encoded: torch.Tensor) -> torch.Tensor:
        """``encoded`` copied into the older of two pinned buffers, grown as needed. Two, because
        the copies run on nvjpeg's own streams while the call waits for torchvision's: a buffer is
        refilled only a whole decode after its own."""
        self.pinned.reverse()
        if self.pinned[0].numel() < encoded.numel():
            self.pinned[0] = torch.empty(encoded.numel() * 5 // 4, dtype=torch.uint8,
                                         pin_memory=True)
        return self.pinned[0][:encoded.numel()].copy_(encoded)

    @staticmethod
    def _files(encoded: torch.Tensor, ends: list[int]) -> list[torch.Tensor]:
        return list(encoded.tensor_split(ends[:-1]))

    def _on_cpu(self, files: list[torch.Tensor], crops: list[Crop]) -> np.ndarray:
        self.cpu_fallbacks += len(files)
        try:
            return np.stack([pil_decode(data.numpy().tobytes(), lambda w, h, c=crop: c)
                             for data, crop in zip(files, crops)])
        except READ_ERRORS as err:
            raise DataError(f"A JPEG of this batch cannot be decoded ({err}); run with "
                            "dataset.decoder=cpu to find and skip it.") from None


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
    step runs in a :class:`Prefetcher` thread, so that the decode of one batch, the float work of
    the next and the training step overlap. Counts the unreadable files met in ``bad_files``
    (shared by train and val).
    """

    def __init__(self, loader: DataLoader, stage: FloatStage, device: torch.device,
                 bad_files: BadFiles, decoder: DeviceDecoder | None, slots: WorkerSlots) -> None:
        self.loader, self.stage, self.device = loader, stage, device
        self.bad_files, self.decoder, self.slots = bad_files, decoder, slots
        self.sampler = loader.sampler
        self.index = loader.dataset.source.index  # type: ignore[attr-defined]

    def __len__(self) -> int:
        return len(self.loader)

    def upload(self, batch: HostBatch) -> tuple[Uploaded, list[torch.Tensor]]:
        self.bad_files.add(self.index, batch.files, batch.skipped)
        pixels, positions, aug = (t.to(self.device, non_blocking=True) for t in (
            batch.pixels, batch.positions, batch.aug))
        labels = batch.labels.to(self.device, non_blocking=True, copy=True)  # outlives the slot
        up = Uploaded(batch, assemble(pixels, positions), aug, labels,
                      self.decoder.decode(batch) if batch.crops else None)
        return up, up.tensors()

    def finish(self, up: Uploaded) -> tuple[Batch, list[torch.Tensor]]:
        if up.host.crops:
            self.decoder.fill(up)  # type: ignore[union-attr]
        batch = self.stage(up.pixels, up.aug), up.labels
        self.slots.release(up.host.slot, up.host.storage)
        return batch, list(batch)

    def __iter__(self) -> Iterator[Batch]:
        self.slots.reset()
        if self.device.type != "cuda":
            for batch in batches(self.loader):
                yield self.finish(self.upload(batch)[0])[0]
            return
        uploads = Prefetcher(self.upload, batches(self.loader), self.device)
        ready = Prefetcher(self.finish, uploads, self.device)
        try:
            yield from ready
        finally:
            ready.stop()
            uploads.stop()


class Prefetcher:
    """Runs ``step`` over ``items`` in a thread, up to :attr:`depth` results ahead (on CUDA on a
    stream of its own). ``step`` returns its result and the tensors in it; iterating yields the
    results in order, on CUDA each one ordered on the iterating thread's current stream (that
    stream waits for the step's work and takes its tensors over, ``record_stream``). An error in
    the thread is raised in the iterating one."""

    depth = 2
    _END = object()

    def __init__(self, step: Callable[[Any], tuple[Any, list[torch.Tensor]]], items: Iterable,
                 device: torch.device) -> None:
        self.step, self.items, self.device = step, items, device
        self.ready: queue.Queue = queue.Queue(maxsize=self.depth)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="fishbench-prefetch", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        stream = (torch.cuda.Stream(self.device, priority=PIPELINE_STREAM_PRIORITY)
                  if self.device.type == "cuda" else None)
        try:
            with torch.cuda.stream(stream):  # no stream: a no-op
                for item in self.items:
                    result, tensors = self.step(item)
                    done = stream.record_event() if stream is not None else None
                    if not self._put((result, tensors, done)):
                        return
            self._put(self._END)
        except BaseException as err:  # noqa: BLE001 - handed to the consumer, raised there
            self._put(err)

    def _put(self, item: object) -> bool:
        """Queue ``item`` unless the consumer stopped; False when it did."""
        while not self.stopping.is_set():
            try:
                self.ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self) -> Iterator[Any]:
        current = torch.cuda.current_stream(self.device) if self.device.type == "cuda" else None
        while (item := self.ready.get()) is not self._END:
            if isinstance(item, BaseException):
                raise item
            result, tensors, done = item
            if current is not None:
                current.wait_event(done)
                for tensor in tensors:
                    tensor.record_stream(current)
            yield result

    def stop(self) -> None:
        """Stop the thread (it finishes the item it is on) and wait for it."""
        self.stopping.set()
        self.thread.join()


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
    device_share = spec.gpu_decode_share if decoder == "gpu" else 0.0
    device_decoder = DeviceDecoder(device) if device_share else None

    def split(index: DatasetIndex, plan: AugmentPlan | None, shuffle: bool) -> DeviceBatches:
        source = SampleSource(index, bad_images, plan,
                              None if shuffle else spec.eval_transform, device_share, tensor_decode)
        # a worker's batches in use at once: those it works ahead, then after the DataLoader
        # hands one over, one in each step and those queued between them
        slots = WorkerSlots(num_workers, PREFETCH_FACTOR + 2 + Prefetcher.depth)
        loader = DataLoader(PlanDataset(source), batch_size=batch_size,
                            sampler=EpochSampler(index, seed, rank, world_size, shuffle),
                            num_workers=num_workers, collate_fn=partial(collate, slots=slots),
                            pin_memory=device.type == "cuda", drop_last=shuffle,
                            persistent_workers=num_workers > 0,
                            prefetch_factor=PREFETCH_FACTOR if num_workers > 0 else None)
        t = spec.train_transform if shuffle else spec.eval_transform
        stage = FloatStage(t.mean, t.std, device, memory_format,
                           flip=shuffle and spec.train_transform.hflip,
                           jitter=shuffle and any(spec.train_transform.color_jitter))
        return DeviceBatches(loader, stage, device, bad_files, device_decoder, slots)

    return (split(spec.train, AugmentPlan(seed, spec.train_transform), True),
            split(spec.val, None, False))
