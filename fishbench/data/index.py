"""The dataset index: image files, labels and class names of a split, and each rank's share.

Both backends read samples through this index, so they see the same files, the same class order
and, for a given seed and epoch, the same shuffled order and the same per-rank shards.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fishbench.errors import DataError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp")
SPLIT_DIRS = {"train": ("train", "ILSVRC2012_train"), "val": ("val", "ILSVRC2012_val")}
LAYOUT_HELP = (
    "Accepted layouts: <root>/train/<class>/<image> with <root>/val/<class>/<image>, or "
    "<root>/ILSVRC2012_train/<class>/... with <root>/ILSVRC2012_val/<class>/... "
    "(one folder per class; ImageNet class folders are the wnids, e.g. n01440764)."
)


@dataclass(frozen=True)
class DatasetIndex:
    """The samples of one split: ``files[i]`` has label ``labels[i]``, an index into ``classes``."""

    files: tuple[str, ...]
    labels: np.ndarray
    classes: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.files)

    def epoch_order(self, epoch: int, seed: int, rank: int = 0, world_size: int = 1,
                    shuffle: bool = True) -> np.ndarray:
        """Sample positions this rank visits in ``epoch``.

        Training (``shuffle``): a permutation seeded by ``(seed, epoch)``, cut to a multiple of
        ``world_size`` so that every rank takes the same number of steps, then dealt round-robin.
        Evaluation: every sample exactly once over all ranks, in file order.
        """
        n = len(self.files)
        if shuffle:
            order = np.random.default_rng([seed, epoch]).permutation(n)
            order = order[: n - n % world_size]
        else:
            order = np.arange(n)
        return order[rank::world_size]


def find_split_dir(root: Path, split: str) -> Path:
    """The folder of ``split`` (``train`` or ``val``) under ``root``, in either accepted layout."""
    for name in SPLIT_DIRS[split]:
        if (root / name).is_dir():
            return root / name
    raise DataError(
        f"dataset.root '{root}' has no {split} folder (looked for "
        f"{' or '.join(SPLIT_DIRS[split])}). {LAYOUT_HELP} Set dataset.root=<that folder>."
    )


def visible(path: Path) -> bool:
    """Not a hidden file or folder (``.DS_Store``, macOS's ``._*`` resource forks, ``.git``)."""
    return not path.name.startswith(".")


def scan_image_folder(split_dir: Path, classes: tuple[str, ...] | None = None) -> DatasetIndex:
    """Index ``split_dir/<class>/<image>``; class order is the sorted folder names (or ``classes``).

    Hidden files and folders are skipped. Scanning the split that defines the classes (no
    ``classes`` given: the train split), a class folder without images stops the run: that class
    could never be learned.
    """
    found = tuple(sorted(d.name for d in split_dir.iterdir() if d.is_dir() and visible(d)))
    if classes is not None and set(found) - set(classes):
        extra = sorted(set(found) - set(classes))[:5]
        raise DataError(
            f"'{split_dir}' has class folders that the train split lacks ({', '.join(extra)}...). "
            "The train and val splits must use the same class folders."
        )
    defines_classes = classes is None
    classes = found if classes is None else classes
    files: list[str] = []
    labels: list[int] = []
    for label, name in enumerate(classes):
        folder = split_dir / name
        if not folder.is_dir():
            continue
        images = [str(p) for p in sorted(folder.iterdir())
                  if visible(p) and p.suffix.lower() in IMAGE_SUFFIXES]
        if not images and defines_classes:
            raise DataError(
                f"The class folder '{folder}' holds no images ({', '.join(IMAGE_SUFFIXES)}): "
                "that class could never be learned. Add its images or remove the folder."
            )
        files += images
        labels += [label] * len(images)
    if not files:
        raise DataError(f"'{split_dir}' holds no image files in class folders. {LAYOUT_HELP}")
    return DatasetIndex(tuple(files), np.asarray(labels, dtype=np.int64), classes)


def build_indices(root: str | Path | None) -> tuple[DatasetIndex, DatasetIndex]:
    """The train and val indices of an image-folder tree; val uses the train class order."""
    if root is None or str(root) in ("", "???"):
        raise DataError(f"dataset.root is not set. {LAYOUT_HELP} Pass dataset.root=<folder>.")
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"dataset.root '{root}' does not exist or is not a folder. {LAYOUT_HELP}")
    train = scan_image_folder(find_split_dir(root, "train"))
    val = scan_image_folder(find_split_dir(root, "val"), train.classes)
    return train, val
