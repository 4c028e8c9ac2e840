"""The PyTorch ``cpu`` engine's decode: torchvision's libjpeg-turbo decoder and torch's uint8
antialiased bilinear resize, 1.2 - 1.7x the images per core of
:func:`~fishbench.data.decode.pil_decode` (``benchmarks/decode_cpu.py``; BENCHMARKS.md). The same
crops from the same plan: the box is cut from the fully decoded image, then resized (PIL's
``resize(box=...)`` also reads the pixels just outside the box, and its ``draft`` decodes large
boxes at a reduced DCT scale: the two differ by a fraction of a level on average). Files that
nvjpeg would refuse too (not a whole baseline JPEG in YCbCr or gray: progressive, CMYK, PNG,
truncated, ...) go to :func:`pil_decode`, which keeps ``dataset.bad_images``' behaviour for the
unreadable ones.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.io import ImageReadMode, decode_jpeg

from fishbench.backends.pytorch.input.nvjpeg import device_decodable_size
from fishbench.data.decode import Crop, pil_decode


def tensor_decode(data: bytes, geometry: Callable[[int, int], Crop]) -> np.ndarray:
    """:func:`pil_decode`'s result (uint8 HWC RGB at the output size) with torch kernels."""
    if device_decodable_size(data) is None:
        return pil_decode(data, geometry)
    image = decode_jpeg(torch.frombuffer(bytearray(data), dtype=torch.uint8),
                        mode=ImageReadMode.RGB)
    height, width = image.shape[1:]
    crop = geometry(width, height)
    (rw, rh), (left, top, right, bottom) = crop.resized, crop.box
    # NCHW with HWC memory (channels_last): torch's fast uint8 path, and HWC again at the end
    pixels = image.unsqueeze(0).contiguous(memory_format=torch.channels_last)
    if (rw, rh) != (width, height):  # eval: resize the whole image, then cut the centre
        pixels = resize(pixels, rh, rw)
        out = pixels[:, :, top:bottom, left:right]
    else:
        out = resize(pixels[:, :, top:bottom, left:right], crop.size, crop.size)
    return out[0].permute(1, 2, 0).numpy()


def resize(pixels: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """``pixels`` (uint8 NCHW) resized to ``height`` x ``width``, bilinear and antialiased."""
    return F.interpolate(pixels, size=(height, width), mode="bilinear", antialias=True)
