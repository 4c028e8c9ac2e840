"""The float stage of the MindSpore input pipeline, once per batch, in ``mindspore.ops``.

The same steps and math as the PyTorch backend's (``fishbench.backends.pytorch.augment``): the
batch arrives as uint8 NHWC with the plan's per-sample numbers; flip, colour jitter (each sample
in its own order, torchvision's ``ColorJitter`` math on floats), normalise, NCHW float32.
"""

from __future__ import annotations

import mindspore as ms
import numpy as np
from mindspore import ops

from fishbench.data.plan import FACTORS, FLIP, GRAY, JITTER_NONE, ORDER


def unit_clamp(x: ms.Tensor) -> ms.Tensor:
    """``x`` clamped to [0, 1]; compiled on the CPU ~2x faster than ``ops.clamp(x, 0.0, 1.0)``."""
    return ops.minimum(ops.relu(x), 1.0)


def grayscale(x: ms.Tensor) -> ms.Tensor:
    r, g, b = ops.unstack(x, 1)  # compiled, several times faster than slicing x[:, 0] etc.
    return (GRAY[0] * r + GRAY[1] * g + GRAY[2] * b).expand_dims(1)


def brightness(x: ms.Tensor, f: ms.Tensor) -> ms.Tensor:
    return unit_clamp(x * f)


def contrast(x: ms.Tensor, f: ms.Tensor) -> ms.Tensor:
    mean = grayscale(x).mean(axis=(1, 2, 3), keep_dims=True)
    return unit_clamp(f * x + (1.0 - f) * mean)


def saturation(x: ms.Tensor, f: ms.Tensor) -> ms.Tensor:
    return unit_clamp(f * x + (1.0 - f) * grayscale(x))


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


JITTERS = (brightness, contrast, saturation, hue)  # the plan's jitter ids


def on_samples(op):
    """``op`` on the samples ``idx`` of ``x``, written back in place of them, compiled."""

    @ms.jit
    def run(x: ms.Tensor, idx: ms.Tensor, f: ms.Tensor) -> ms.Tensor:
        return ops.tensor_scatter_update(x, idx.reshape(-1, 1), op(ops.gather(x, idx, 0), f))

    return run


WHOLE = tuple(ms.jit(op) for op in JITTERS)  # compiled (eager CPU kernels are several x slower)
SUBSET = tuple(on_samples(op) for op in JITTERS)
HUE = JITTERS.index(hue)
NONE = -1  # no jitter in this slot of the sample


def apply_steps(x: ms.Tensor, factors: np.ndarray, steps: np.ndarray) -> ms.Tensor:
    """Apply to sample ``i`` jitter ``steps[i, k]`` (``NONE``: nothing) for k = 0, 1, ...:
    each (step, jitter) pair on the samples it picks, padded to a power of two by repeating
    one of them (at most log2(batch) + 1 shapes to compile per jitter). Samples with the
    jitter's neutral factor (e.g. hue 0) are left out."""
    for step in steps.T:
        for jid in range(len(JITTERS)):
            picked = np.flatnonzero((step == jid) & (factors[:, jid] != JITTER_NONE[jid]))
            if len(picked) == 0:
                continue
            padded = np.resize(picked, min(1 << (len(picked) - 1).bit_length(), x.shape[0]))
            f = ms.Tensor(factors[padded, jid].reshape(-1, 1, 1, 1).astype(np.float32))
            if len(picked) == x.shape[0]:
                x = WHOLE[jid](x, f)
            else:
                x = SUBSET[jid](x, ms.Tensor(padded.astype(np.int32)), f)
    return x


def color_jitter(x: ms.Tensor, factors: np.ndarray, order: np.ndarray) -> ms.Tensor:
    """Apply to sample ``i`` of ``x`` (float 0..1 NCHW) jitter ``order[i, k]`` with factor
    ``factors[i, order[i, k]]`` for k = 0..3 (``factors`` and ``order`` are host arrays).

    The hue costs most: it runs once over the whole batch (no gather, scatter or padding), with
    each sample's other jitters split into those before its hue and those after."""
    if (factors[:, HUE] == JITTER_NONE[HUE]).all():
        return apply_steps(x, factors, order)
    at = np.argmax(order == HUE, axis=1)[:, None]  # the step of each sample's hue
    k = np.arange(order.shape[1] - 1)
    before = np.where(k < at, order[:, :-1], NONE)
    after = np.take_along_axis(order, np.minimum(at + 1 + k, order.shape[1] - 1), axis=1)
    after = np.where(at + 1 + k < order.shape[1], after, NONE)
    x = apply_steps(x, factors, before)
    x = WHOLE[HUE](x, ms.Tensor(factors[:, HUE].reshape(-1, 1, 1, 1).astype(np.float32)))
    return apply_steps(x, factors, after)


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
    """Flip, jitter and normalise one batch: uint8 NHWC (numpy) -> float32 NCHW tensor; each
    step compiled (``ms.jit``: eager CPU kernels are several times slower)."""

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
