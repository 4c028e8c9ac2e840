"""The augmentation plan: what each sample of an epoch gets, drawn once and framework-neutral.

For ``(seed, epoch)`` a training sample (a file of the index) gets its RandomResizedCrop box
(torchvision's algorithm: up to 10 tries of a scale and a log-uniform aspect ratio, then a centre
crop), a horizontal-flip bit and the four colour-jitter factors with the order they apply in.
The draws come from a generator seeded by ``(seed, epoch, file)``: every backend, engine, worker
count and rank computes the same numbers, and a resumed run draws what an uninterrupted one would.
The box depends on the image's real width and height, known where the file is opened; the rest
does not. Evaluation crops the centre box of ``Resize(resize) -> CenterCrop(size)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fishbench.data.transforms import EvalTransform, TrainTransform

CROP_TRIES = 10
Box = tuple[int, int, int, int]  # left, top, right, bottom in the source image's pixels
# Where one sample's float-stage numbers sit as the batch carries them (``SampleAugment.vector``):
# the flip, the four jitter factors (brightness, contrast, saturation, hue), their order (ids).
FLIP, FACTORS, ORDER = 0, slice(1, 5), slice(5, 9)
JITTER_NONE = (1.0, 1.0, 1.0, 0.0)  # the factors that change nothing
GRAY = (0.2989, 0.587, 0.114)  # torchvision's rgb_to_grayscale weights (contrast, saturation)


@dataclass(frozen=True)
class SampleAugment:
    """One training sample's draws; :meth:`box` turns them into a crop of a ``width x height``
    image."""

    crop_draws: np.ndarray  # (CROP_TRIES, 4) uniforms in [0, 1): scale, log-ratio, top, left
    scale: tuple[float, float]
    ratio: tuple[float, float]
    flip: bool
    jitter: tuple[float, float, float, float]  # brightness, contrast, saturation, hue
    order: tuple[int, int, int, int]  # jitter ids (0..3 as in ``jitter``) in application order

    def box(self, width: int, height: int) -> Box:
        """torchvision's ``RandomResizedCrop.get_params`` on these draws."""
        area = width * height
        lo, hi = math.log(self.ratio[0]), math.log(self.ratio[1])
        for u_scale, u_ratio, u_top, u_left in self.crop_draws:
            target = area * (self.scale[0] + u_scale * (self.scale[1] - self.scale[0]))
            aspect = math.exp(lo + u_ratio * (hi - lo))
            w = int(round(math.sqrt(target * aspect)))
            h = int(round(math.sqrt(target / aspect)))
            if 0 < w <= width and 0 < h <= height:
                top = int(u_top * (height - h + 1))
                left = int(u_left * (width - w + 1))
                return left, top, left + w, top + h
        in_ratio = width / height
        if in_ratio < min(self.ratio):
            w, h = width, int(round(width / min(self.ratio)))
        elif in_ratio > max(self.ratio):
            w, h = int(round(height * max(self.ratio))), height
        else:
            w, h = width, height
        top, left = (height - h) // 2, (width - w) // 2
        return left, top, left + w, top + h

    def vector(self) -> np.ndarray:
        """The float stage's numbers of this sample: flip, the four factors, their order."""
        return np.array([float(self.flip), *self.jitter, *self.order], np.float32)


@dataclass(frozen=True)
class AugmentPlan:
    """The training augmentation of a run, sample by sample, from ``seed`` and the transform."""

    seed: int
    transform: TrainTransform

    def sample(self, epoch: int, file: int) -> SampleAugment:
        t = self.transform
        rng = np.random.default_rng([self.seed, epoch, file])
        crop_draws = rng.random((CROP_TRIES, 4))
        flip = bool(rng.random() < 0.5) and t.hflip
        b, c, s, h = t.color_jitter
        jitter = (float(rng.uniform(max(0.0, 1 - b), 1 + b)) if b else 1.0,
                  float(rng.uniform(max(0.0, 1 - c), 1 + c)) if c else 1.0,
                  float(rng.uniform(max(0.0, 1 - s), 1 + s)) if s else 1.0,
                  float(rng.uniform(-h, h)) if h else 0.0)
        order = tuple(int(i) for i in rng.permutation(4))
        return SampleAugment(crop_draws, t.scale, t.ratio, flip, jitter, order)  # type: ignore[arg-type]


def eval_box(width: int, height: int, t: EvalTransform) -> tuple[int, int, int, int, int, int]:
    """``Resize(t.resize)`` then ``CenterCrop(t.size)`` as torchvision rounds them: the box
    (left, top, right, bottom) in the image resized to (width, height), and that size."""
    if width <= height:
        new_w, new_h = t.resize, int(t.resize * height / width)
    else:
        new_w, new_h = int(t.resize * width / height), t.resize
    top, left = int(round((new_h - t.size) / 2.0)), int(round((new_w - t.size) / 2.0))
    return left, top, left + t.size, top + t.size, new_w, new_h


EVAL_AUG = np.array([0.0, *JITTER_NONE, 0, 1, 2, 3], np.float32)  # no flip, no jitter
