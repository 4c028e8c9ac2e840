"""Reading samples for the input pipelines: the file, its crop, and what a bad file does.

A :class:`SampleSource` turns ``(epoch, file)`` into a :class:`Sample`: the crop at the output
size as uint8 HWC (decode, crop, antialiased resize), or, for a backend's device decoder, the
file's bytes with the crop geometry, to be decoded on the device. The crop comes from the
:class:`~fishbench.data.plan.AugmentPlan` (training) or the eval centre crop. Decoding on the CPU
is :func:`pil_decode` (framework-free: MindSpore's workers use it; PyTorch's cut the same crops
with torch kernels, which are faster). An unreadable file is skipped or stops the run, as
``dataset.bad_images`` says. A skipped training file gives its place to the next readable one
(the sample says how many were passed over); a skipped evaluation file gives a blank sample
labelled :data:`UNREADABLE`, which no accuracy counts: a split is scored over its readable
images, each once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
from PIL import Image

from fishbench.data.images import READ_ERRORS, first_readable, open_image, to_rgb, unreadable
from fishbench.data.index import DatasetIndex
from fishbench.data.plan import EVAL_AUG, AugmentPlan, eval_box
from fishbench.data.transforms import EvalTransform

GOLDEN = 0.6180339887498949  # spreads any share of the files evenly over the index
UNREADABLE = -1  # the label of a skipped evaluation file (not scored: fishbench.run.metrics)


@dataclass(frozen=True)
class Crop:
    """Where the output comes from: ``box`` (left, top, right, bottom) of the image resized to
    ``resized`` (width, height), scaled to ``size`` x ``size``. Training boxes are in the source
    image (``resized`` is its own size); evaluation resizes the short side first, then takes the
    centre box, as torchvision's ``Resize`` + ``CenterCrop``."""

    resized: tuple[int, int]
    box: tuple[int, int, int, int]
    size: int


def pil_decode(data: bytes, geometry: Callable[[int, int], Crop]) -> np.ndarray:
    """The crop of ``data`` that ``geometry(width, height)`` names, as uint8 HWC RGB at the
    output size; one of ``READ_ERRORS`` for an unreadable file. JPEGs decode at the smallest DCT scale that still gives the output full
    resolution (``draft``), then crop and resize (bilinear, antialiased) in one step."""
    with open_image(data) as img:
        width, height = img.size
        crop = geometry(width, height)
        (rw, rh), (left, top, right, bottom) = crop.resized, crop.box
        if img.format == "JPEG" and (rw, rh) == (width, height):
            need = (-(-width * crop.size // (right - left)), -(-height * crop.size // (bottom - top)))
            img.draft("RGB", need)
        sx, sy = img.size[0] / rw, img.size[1] / rh
        rgb = to_rgb(img)
    if (rw, rh) != (width, height):  # eval: resize the whole image, then cut the centre
        rgb = rgb.resize((rw, rh), Image.BILINEAR)
        out = rgb.crop((left, top, right, bottom))
    else:
        out = rgb.resize((crop.size, crop.size), Image.BILINEAR,
                         box=(left * sx, top * sy, right * sx, bottom * sy))
    return np.asarray(out, dtype=np.uint8)


Decode = Callable[[bytes, Callable[[int, int], Crop]], np.ndarray]  # as pil_decode
DeviceSize = Callable[[bytes], tuple[int, int] | None]  # a device decoder's rule


def eval_crop(width: int, height: int, t: EvalTransform) -> Crop:
    left, top, right, bottom, rw, rh = eval_box(width, height, t)
    return Crop((rw, rh), (left, top, right, bottom), t.size)


@dataclass
class Sample:
    """One sample as a worker hands it over. ``pixels`` is the crop (uint8 HWC at the output
    size), or, when ``crop`` is set (``encoded``), the file's bytes (uint8, 1-D) to be decoded
    and cut to ``crop`` on the device. ``aug`` is the float stage's numbers
    (:meth:`~fishbench.data.plan.SampleAugment.vector`). ``file`` is the index position read;
    ``skipped`` files before it (cyclically) were bad; ``label`` is :data:`UNREADABLE` when
    ``file`` itself was (an evaluation file, skipped)."""

    pixels: np.ndarray
    label: int
    aug: np.ndarray
    file: int
    skipped: int
    crop: Optional[Crop] = None

    @property
    def encoded(self) -> bool:
        return self.crop is not None


class SampleSource:
    """The samples of one split. ``plan`` set: training crops of the plan; else eval crops.

    Files are decoded here with ``decode`` (:func:`pil_decode`'s signature; PyTorch passes its
    torch kernels). With a device decoder, the share ``device_share`` of the files (a fixed
    subset) is handed on as bytes instead, those that its rule ``device_size`` accepts (it gives
    a file's (width, height), or None for one the decoder refuses, which is decoded here): the
    workers' cores decode alongside the device.
    """

    def __init__(self, index: DatasetIndex, bad_images: str, plan: AugmentPlan | None,
                 eval_transform: EvalTransform | None, *, decode: Decode = pil_decode,
                 device_share: float = 0.0, device_size: DeviceSize | None = None) -> None:
        self.index, self.bad_images = index, bad_images
        self.plan, self.eval_transform, self.decode = plan, eval_transform, decode
        self.device_share, self.device_size = device_share, device_size

    def __len__(self) -> int:
        return len(self.index)

    def read(self, epoch: int, position: int) -> Sample:
        if self.plan is not None:
            return first_readable(self.index, self.bad_images, position,
                                  lambda file, skipped: self._sample(epoch, file, skipped))
        try:
            return self._sample(epoch, position, 0)
        except READ_ERRORS as err:
            unreadable(self.index.files[position], self.bad_images, err)
        size = self.eval_transform.size  # type: ignore[union-attr]
        return Sample(np.zeros((size, size, 3), np.uint8), UNREADABLE, EVAL_AUG, position, 0)

    def _sample(self, epoch: int, file: int, skipped: int) -> Sample:
        with open(self.index.files[file], "rb") as f:
            data = f.read()
        label = int(self.index.labels[file])
        if self.plan is not None:
            draws = self.plan.sample(epoch, file)
            size = self.plan.transform.size

            def geometry(width: int, height: int) -> Crop:
                return Crop((width, height), draws.box(width, height), size)

            aug = draws.vector()
        else:
            t = self.eval_transform

            def geometry(width: int, height: int) -> Crop:
                return eval_crop(width, height, t)  # type: ignore[arg-type]

            aug = EVAL_AUG
        dims = None
        if self.device_size is not None and (file * GOLDEN) % 1.0 < self.device_share:
            dims = self.device_size(data)
        if dims is not None:
            return Sample(np.frombuffer(data, np.uint8), label, aug, file, skipped,
                          geometry(*dims))
        return Sample(self.decode(data, geometry), label, aug, file, skipped)


class BadFiles:
    """The unreadable files met in a run, each counted once (train and val alike)."""

    def __init__(self) -> None:
        self.paths: set[str] = set()

    def add(self, index: DatasetIndex, files: np.ndarray, skipped: np.ndarray,
            labels: np.ndarray) -> None:
        """Record the ``skipped[i]`` files before ``files[i]`` (cyclically) as bad, and
        ``files[i]`` itself where ``labels[i]`` is :data:`UNREADABLE`."""
        n = len(index)
        for file, count, label in zip(files.tolist(), skipped.tolist(), labels.tolist()):
            if label == UNREADABLE:
                self.paths.add(index.files[file])
            for k in range(1, int(count) + 1):
                self.paths.add(index.files[(file - k) % n])

    def __len__(self) -> int:
        return len(self.paths)
