"""Train/eval transform numbers of the recipes; each backend builds its own ops from them."""

from __future__ import annotations

from dataclasses import dataclass

from fishbench.config import DatasetConfig


@dataclass(frozen=True)
class TrainTransform:
    """RandomResizedCrop(size, scale, ratio) -> optional flip -> colour jitter -> normalise."""

    size: int
    scale: tuple[float, float]
    ratio: tuple[float, float]
    hflip: bool
    color_jitter: tuple[float, float, float, float]  # brightness, contrast, saturation, hue
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


@dataclass(frozen=True)
class EvalTransform:
    """Resize the short side to ``resize`` -> centre crop ``size`` -> normalise."""

    resize: int
    size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


def transforms_for(ds: DatasetConfig) -> tuple[TrainTransform, EvalTransform]:
    mean, std = tuple(ds.mean), tuple(ds.std)
    train = TrainTransform(
        size=ds.image_size,
        scale=tuple(ds.crop_scale),
        ratio=tuple(ds.crop_ratio),
        hflip=ds.hflip,
        color_jitter=tuple(ds.color_jitter),
        mean=mean,
        std=std,
    )
    return train, EvalTransform(resize=ds.resize_size, size=ds.image_size, mean=mean, std=std)
