"""The embedded default dataset: scikit-learn's real 8x8 handwritten digits as an image folder.

The tree is written once (atomically, so concurrent runs never see half of it) and afterwards read
with exactly the code path that reads ImageNet.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

VAL_EVERY = 5  # every 5th sample goes to val: 1437 train / 360 val images


def ensure_digits_tree(root: str | Path) -> Path:
    """Write ``root/{train,val}/<digit>/<n>.png`` unless it is already there; return ``root``."""
    root = Path(root).expanduser()
    if (root / "train").is_dir() and (root / "val").is_dir():
        return root
    from sklearn.datasets import load_digits  # the images ship inside scikit-learn

    digits = load_digits()
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".digits-", dir=root.parent))
    try:
        for i, (image, label) in enumerate(zip(digits.images, digits.target)):
            split = "val" if i % VAL_EVERY == 0 else "train"
            folder = tmp / split / str(label)
            folder.mkdir(parents=True, exist_ok=True)
            pixels = np.round(image * (255.0 / 16.0)).astype(np.uint8)  # 0..16 grey levels
            Image.fromarray(pixels, mode="L").save(folder / f"{i:04d}.png")
        try:
            os.rename(tmp, root)
        except OSError:  # another process finished first
            if not (root / "val").is_dir():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return root
