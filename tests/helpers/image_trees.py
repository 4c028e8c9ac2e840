"""Small image trees on disk for the data and run tests."""

from __future__ import annotations

import os
from pathlib import Path

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
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        color = (i * 40 % 255, 80, 160, 0)[: len(mode)] if mode != "L" else i * 40 % 255
        fmt = "JPEG" if mode == "CMYK" else "PNG"
        Image.new(mode, (size, size), color).save(folder / f"{i}.{fmt.lower()}", fmt)


def small_tree(root: Path, classes: int = 3, n: int = 4) -> Path:
    for split in ("train", "val"):
        for c in range(classes):
            write_images(root / split / f"class{c}", n)
    return root
