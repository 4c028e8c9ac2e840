"""The ``gpu`` engine's device part: which files nvjpeg may take, its decode of a batch's JPEG
bytes, and the crops of the decoded images written into the batch."""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import torch

from fishbench.backends.pytorch.input.collate import HostBatch
from fishbench.data.decode import Crop, pil_decode
from fishbench.data.images import READ_ERRORS, open_image
from fishbench.errors import DataError

log = logging.getLogger("fishbench")


def device_decodable_size(data: bytes) -> tuple[int, int] | None:
    """The (width, height) of a file nvjpeg can take: a whole (ends with its EOI marker)
    baseline, not progressive, JPEG in YCbCr or gray; None for others, which are decoded on the
    CPU, where a truncated file is found bad as with the cpu engine."""
    if not data.rstrip(b"\0").endswith(b"\xff\xd9"):
        return None
    try:
        with open_image(data) as img:
            ok = (img.format == "JPEG" and img.mode in ("RGB", "L")
                  and not img.info.get("progressive") and not img.info.get("progression"))
            return img.size if ok else None
    except READ_ERRORS:
        return None


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
    """nvjpeg decodes a batch's JPEG bytes (:meth:`decode`), then :meth:`fill` crops and resizes
    them into the batch (:func:`fill_encoded`). A batch nvjpeg refuses is decoded on the CPU
    instead (``cpu_fallbacks`` counts the files).

    ``decode_jpeg`` runs on a stream of its own that never gets a kernel (pytorch/vision#9606:
    the decoder allocates its outputs on the caller's stream but writes them from a private
    stream that does not wait for the caller's, so on a busy stream it can be handed a block that
    queued kernels still read). The caller's stream waits for the decode; the images are used on
    the stream that crops them, where the
    :class:`~fishbench.backends.pytorch.input.prefetch.Prefetcher` handing them over
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

    def fill(self, pixels: torch.Tensor, host: HostBatch,
             decoded: list[torch.Tensor] | None) -> None:
        """Complete ``pixels`` (the batch on the device, the workers' crops in place) with the
        encoded samples of ``host``, as :meth:`decode` gave them (see :func:`fill_encoded`)."""
        fill_encoded(pixels, host.crops, host.encoded_at, decoded,
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
