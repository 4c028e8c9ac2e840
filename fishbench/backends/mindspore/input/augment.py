"""The float stage of the MindSpore input pipeline, once per batch, in ``mindspore.ops``.

The same steps and math as the PyTorch backend's (``fishbench.backends.pytorch.input.augment``): the
batch arrives as uint8 NHWC with the plan's per-sample numbers; flip, colour jitter (each sample
in its own order, torchvision's ``ColorJitter`` math on floats), normalise, NCHW float32.
Every step runs compiled (``ms.jit``: eager CPU kernels are several times slower) on the whole
batch with fixed shapes: brightness, contrast and saturation are one per-sample blend formula,
so a sample's jitter order needs no gather or scatter of sample subsets.
"""

from __future__ import annotations

import mindspore as ms
import numpy as np
from mindspore import ops

from fishbench.data.plan import FACTORS, FLIP, GRAY, JITTER_NONE, ORDER

BRIGHTNESS, CONTRAST, SATURATION, HUE = range(4)  # the plan's jitter ids
NONE = -1  # no jitter in this step of the sample


def unit_clamp(x: ms.Tensor) -> ms.Tensor:
    """``x`` clamped to [0, 1]; compiled on the CPU ~2x faster than ``ops.clamp(x, 0.0, 1.0)``."""
    return ops.minimum(ops.relu(x), 1.0)


def grayscale(x: ms.Tensor) -> ms.Tensor:
    r, g, b = ops.unstack(x, 1)  # compiled, several times faster than slicing x[:, 0] etc.
    return (GRAY[0] * r + GRAY[1] * g + GRAY[2] * b).expand_dims(1)


def hue(x: ms.Tensor, f: ms.Tensor) -> ms.Tensor:
    """Shift the hue by ``f`` turns (RGB -> HSV -> RGB, as torchvision's ``adjust_hue``). Back to
    RGB by the direct formula: channel n (R 5, G 3, B 1) is ``v - v s clamp(min(k, 4 - k), 0, 1)``
    with ``k = (n + 6 h) mod 6``, which equals torchvision's six-sector table; here ``v s`` is
    the chroma and ``6 h`` the sector position before its wrap (the mod 6 wraps it)."""
    r, g, b = ops.unstack(x, 1)
    maxc = ops.maximum(ops.maximum(r, g), b)
    chroma = maxc - ops.minimum(ops.minimum(r, g), b)
    inv = 1.0 / ops.maximum(chroma, 1e-30)  # chroma 0: every numerator below is 0 as well
    h6 = ops.where(maxc == r, (g - b) * inv,
                   ops.where(maxc == g, (b - r) * inv + 2.0, (r - g) * inv + 4.0))
    h6 = h6 + 6.0 * f.reshape(-1, 1, 1)
    channels = []
    for n in (5.0, 3.0, 1.0):
        k = h6 + n
        k = k - 6.0 * ops.floor(k * (1.0 / 6.0))
        channels.append(maxc - chroma * unit_clamp(ops.minimum(k, 4.0 - k)))
    return ops.stack(channels, axis=1)


def blend(x: ms.Tensor, a: ms.Tensor, b: ms.Tensor, c: ms.Tensor) -> ms.Tensor:
    """``clamp(a x + c gray(x) + b mean(gray(x)), 0, 1)`` per sample (a, b, c: (N, 1, 1, 1)).
    torchvision's brightness ``f`` is (f, 0, 0), contrast (f, 1 - f, 0), saturation
    (f, 0, 1 - f), nothing (1, 0, 0): each bit for bit its own formula (``clamp(f x)``,
    ``clamp(f x + (1 - f) mean)``, ``clamp(f x + (1 - f) gray)``), as the zero terms add exact
    zeros, so one fixed-shape pass serves every sample whatever its jitter at that step."""
    g = grayscale(x)
    mean = g.reshape(g.shape[0], -1).mean(axis=1).reshape(-1, 1, 1, 1)  # faster than axis=(1, 2, 3)
    return unit_clamp(a * x + (c * g + b * mean))


@ms.jit
def blend_steps(x: ms.Tensor, coefficients: ms.Tensor) -> ms.Tensor:
    """:func:`blend` with ``coefficients[k]`` ((3, N, 1, 1, 1): a, b, c) for k = 0, 1, ..."""
    for k in range(coefficients.shape[0]):
        x = blend(x, coefficients[k, 0], coefficients[k, 1], coefficients[k, 2])
    return x


def blend_coefficients(factors: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """:func:`blend_steps`' coefficients for sample ``i``'s jitter ``steps[i, k]`` (brightness,
    contrast or saturation; another id: nothing) with its factor of ``factors``."""
    n, k = steps.shape
    f = np.take_along_axis(factors, np.clip(steps, 0, factors.shape[1] - 1), axis=1).T  # (k, n)
    linear = np.isin(steps.T, (BRIGHTNESS, CONTRAST, SATURATION))
    coefficients = np.zeros((k, 3, n), np.float32)
    coefficients[:, 0] = np.where(linear, f, 1.0)
    coefficients[:, 1] = np.where(steps.T == CONTRAST, 1.0 - f, 0.0)
    coefficients[:, 2] = np.where(steps.T == SATURATION, 1.0 - f, 0.0)
    return coefficients.reshape(k, 3, n, 1, 1, 1)


compiled_hue = ms.jit(hue)


def color_jitter(x: ms.Tensor, factors: np.ndarray, order: np.ndarray) -> ms.Tensor:
    """Apply to sample ``i`` of ``x`` (float 0..1 NCHW) jitter ``order[i, k]`` with factor
    ``factors[i, order[i, k]]`` for k = 0..3 (``factors`` and ``order`` are host arrays).

    The hue runs once over the batch (skipped when all its factors are 0); the other three
    run as :func:`blend` steps, those before each sample's hue, then those after it."""
    if (factors[:, HUE] == JITTER_NONE[HUE]).all():
        steps = order[order != HUE].reshape(len(order), -1)
        return blend_steps(x, ms.Tensor(blend_coefficients(factors, steps)))
    at = np.argmax(order == HUE, axis=1)[:, None]  # the step of each sample's hue
    k = np.arange(order.shape[1] - 1)
    before = np.where(k < at, order[:, :-1], NONE)[:, :at.max()]
    after = np.take_along_axis(order, np.minimum(at + 1 + k, order.shape[1] - 1), axis=1)
    after = np.where(at + 1 + k < order.shape[1], after, NONE)[:, :order.shape[1] - 1 - at.min()]
    if before.shape[1]:
        x = blend_steps(x, ms.Tensor(blend_coefficients(factors, before)))
    x = compiled_hue(x, ms.Tensor(factors[:, HUE].reshape(-1, 1, 1, 1).astype(np.float32)))
    if after.shape[1]:
        x = blend_steps(x, ms.Tensor(blend_coefficients(factors, after)))
    return x


@ms.jit
def to_float(pixels: ms.Tensor, unit: bool) -> ms.Tensor:
    """uint8 NHWC -> float NCHW, 0..255 or (``unit``) 0..1."""
    x = ops.transpose(pixels, (0, 3, 1, 2)).astype(ms.float32)
    return x / 255.0 if unit else x


@ms.jit
def flip_to_float(pixels: ms.Tensor, flip: ms.Tensor, reverse: ms.Tensor, unit: bool) -> ms.Tensor:
    """:func:`to_float` after flipping the samples ``flip`` (N, 1, 1, 1) picks: a gather of the
    reversed columns on the uint8 batch, several times faster than ``ops.flip`` on the CPU."""
    return to_float(ops.where(flip, ops.gather(pixels, reverse, 2), pixels), unit)


@ms.jit
def normalise(x: ms.Tensor, scale: ms.Tensor, shift: ms.Tensor, unit: bool) -> ms.Tensor:
    """Float 0..255 (or 0..1, ``unit``) to the normalised input."""
    return (x * 255.0 if unit else x) * scale + shift


class FloatStage:
    """Flip, jitter and normalise one batch: uint8 NHWC (numpy) -> float32 NCHW tensor."""

    def __init__(self, mean, std, flip: bool, jitter: bool) -> None:
        self.scale = ms.Tensor((1.0 / (255.0 * np.asarray(std, np.float32))).reshape(1, 3, 1, 1))
        self.shift = ms.Tensor((-np.asarray(mean, np.float32) / np.asarray(std, np.float32))
                               .reshape(1, 3, 1, 1))
        self.flip, self.jitter = flip, jitter

    def __call__(self, pixels: np.ndarray, aug: np.ndarray) -> ms.Tensor:
        flip = aug[:, FLIP] > 0.5
        if self.flip and flip.any():
            reverse = ms.Tensor(np.arange(pixels.shape[2] - 1, -1, -1, dtype=np.int32))
            x = flip_to_float(ms.Tensor(pixels), ms.Tensor(flip.reshape(-1, 1, 1, 1)), reverse,
                              self.jitter)
        else:
            x = to_float(ms.Tensor(pixels), self.jitter)
        if self.jitter:
            x = color_jitter(x, aug[:, FACTORS], aug[:, ORDER].astype(np.int64))
        return normalise(x, self.scale, self.shift, self.jitter)
