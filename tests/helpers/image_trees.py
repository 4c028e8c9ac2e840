"""Small image trees on disk for the data and run tests."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from conftest import IMAGENET_SAMPLE


def imagenet_tree(root: Path, train: str = "train", val: str = "val") -> Path:
    """An ImageNet-layout tree of links to the 1000 sample JPEGs (one per class, both splits)."""
    for jpeg in sorted(IMAGENET_SAMPLE.glob("*.JPEG")):
        wnid = jpeg.name.split("_")[0]
        for split in (train, val):
            (root / split / wnid).mkdir(parents=True, exist_ok=True)
            os.symlink(jpeg, root / split / wnid / jpeg.name)
    return root


def write_images(folder: Path, n: int, mode: str = "RGB", size: int = 40) -> None:
    """``n`` flat images of ``mode`` in ``folder``: PNGs, JPEGs for CMYK."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        color = (i * 40 % 255, 80, 160, 0)[: len(mode)] if mode != "L" else i * 40 % 255
        fmt = "JPEG" if mode == "CMYK" else "PNG"
        Image.new(mode, (size, size), color).save(folder / f"{i}.{fmt.lower()}", fmt)


def small_tree(root: Path, classes: int = 3, n: int = 4) -> Path:
    """An image-folder tree (train/ and val/) of ``classes`` classes of ``n`` PNGs each."""
    for split in ("train", "val"):
        for c in range(classes):
            write_images(root / split / f"class{c}", n)
    return root


def photo(seed: int, width: int = 96, height: int = 72) -> Image.Image:
    """A smooth colourful image (JPEG-friendly) with real structure to crop."""
    y, x = np.mgrid[0:height, 0:width] / max(width, height)
    phase = np.random.default_rng(seed).uniform(0, 6, 3)
    rgb = [127 + 120 * np.sin(6 * x + 4 * y * (c + 1) + phase[c]) for c in range(3)]
    return Image.fromarray(np.stack(rgb, -1).astype(np.uint8))


def jpeg_tree(root: Path, classes: int = 2, per_class: int = 6) -> Path:
    """An image-folder tree of :func:`photo` JPEGs of several sizes, both splits alike."""
    for split in ("train", "val"):
        for c in range(classes):
            folder = root / split / f"c{c}"
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                photo(c * 100 + i, 96 - 8 * i, 72 + 4 * i).save(folder / f"{i}.jpg", quality=90)
    return root


def digits_subset(full: Path, root: Path, train_per_class: int | None,
                  val_per_class: int | None) -> Path:
    """A tree at ``root`` of links to the first images of each class of the digits tree ``full``
    (``None``: all of that split's)."""
    for split, per_class in (("train", train_per_class), ("val", val_per_class)):
        for folder in sorted((full / split).iterdir()):
            (root / split / folder.name).mkdir(parents=True)
            for image in sorted(folder.iterdir())[:per_class]:
                (root / split / folder.name / image.name).symlink_to(image)
    return root
