"""Reading one sample: decode to RGB (grayscale, CMYK and palette images included), and what an
unreadable file does (``dataset.bad_images``: ``skip`` it and count, or ``stop`` the run)."""

from __future__ import annotations

import logging

import numpy as np
from PIL import Image

from fishbench.data.index import DatasetIndex
from fishbench.errors import DataError

log = logging.getLogger(__name__)


def load_rgb(path: str) -> Image.Image:
    with Image.open(path) as img:
        return img.convert("RGB")


class SampleReader:
    """Returns ``(rgb image, label, skipped)`` for a position of the index.

    With ``bad_images='skip'`` an unreadable file is replaced by the next readable one and
    ``skipped`` counts the files passed over; with ``'stop'`` it raises :class:`DataError`.
    """

    def __init__(self, index: DatasetIndex, bad_images: str) -> None:
        self.index = index
        self.bad_images = bad_images

    def read(self, position: int) -> tuple[Image.Image, int, int]:
        n = len(self.index)
        for skipped in range(n):
            i = (position + skipped) % n
            path = self.index.files[i]
            try:
                return load_rgb(path), int(self.index.labels[i]), skipped
            except (OSError, SyntaxError, ValueError) as err:
                if self.bad_images == "stop":
                    raise DataError(
                        f"Cannot read image '{path}' ({err}). Remove or replace the file, or set "
                        "dataset.bad_images=skip to skip unreadable images and count them."
                    ) from None
                log.warning("skipping unreadable image %s (%s)", path, err)
        raise DataError(f"No image of the split under '{self.index.files[0]}' can be read.")


def synthetic_sample(position: int, size: int, num_classes: int, seed: int) -> tuple[np.ndarray, int]:
    """A reproducible random CHW float32 image (already normalised) and label for ``position``."""
    rng = np.random.default_rng([seed, position])
    return rng.standard_normal((3, size, size), dtype=np.float32), int(rng.integers(num_classes))
