"""Reading one image: open it (an image over PIL's pixel limit is unreadable), decode to RGB
(grayscale, 16-bit, CMYK and palette images included), and what an unreadable file does
(``dataset.bad_images``: ``skip`` it and count, or ``stop`` the run)."""

from __future__ import annotations

import io
import logging
import warnings
from typing import Callable, TypeVar

import numpy as np
from PIL import Image

from fishbench.data.index import DatasetIndex
from fishbench.errors import DataError

log = logging.getLogger(__name__)
T = TypeVar("T")
READ_ERRORS = (OSError, SyntaxError, ValueError, RuntimeError, Image.DecompressionBombError,
               Image.DecompressionBombWarning)
SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")


def open_image(data: bytes) -> Image.Image:
    """PIL's lazy image of the file ``data``. A header claiming more pixels than
    ``PIL.Image.MAX_IMAGE_PIXELS`` (a decompression bomb: decoding it would fill the memory)
    raises one of :data:`READ_ERRORS`, as any other unreadable file does."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        return Image.open(io.BytesIO(data))


def to_rgb(image: Image.Image) -> Image.Image:
    """RGB of any mode; 16-bit grayscale is scaled to 8 bits (``convert`` would clip it white)."""
    if image.mode in SIXTEEN_BIT_MODES:
        pixels = np.asarray(image).astype(np.uint32)
        image = Image.fromarray((pixels >> 8).astype(np.uint8), mode="L")
    return image.convert("RGB")


def first_readable(index: DatasetIndex, bad_images: str, position: int,
                   read: Callable[[int, int], T]) -> T:
    """``read(file, skipped)`` of the first readable file from ``position`` on (cyclically).

    With ``bad_images='skip'`` an unreadable file is passed over (``skipped`` counts them); with
    ``'stop'`` it raises :class:`DataError` naming the file and the fix.
    """
    n = len(index)
    for skipped in range(n):
        file = (position + skipped) % n
        try:
            return read(file, skipped)
        except READ_ERRORS as err:
            unreadable(index.files[file], bad_images, err)
    raise DataError(f"No image of the split under '{index.files[0]}' can be read.")


def unreadable(path: str, bad_images: str, err: Exception) -> None:
    """What the unreadable file ``path`` does: with ``bad_images='stop'`` raise
    :class:`DataError` naming it and the fix, with ``'skip'`` log it."""
    if bad_images == "stop":
        raise DataError(
            f"Cannot read image '{path}' ({err}). Remove or replace the file, or set "
            "dataset.bad_images=skip to skip unreadable images and count them."
        ) from None
    log.warning("skipping unreadable image %s (%s)", path, err)
