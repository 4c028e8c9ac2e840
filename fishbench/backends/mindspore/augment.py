"""The float stage of the MindSpore input pipeline, once per batch, in ``mindspore.ops``.

The same steps and math as the PyTorch backend's (``fishbench.backends.pytorch.augment``): the
batch arrives as uint8 NHWC with the plan's per-sample numbers; flip, colour jitter (each sample
in its own order, torchvision's ``ColorJitter`` math on floats), normalise, NCHW float32.
"""

from __future__ import annotations

import mindspore as ms
import numpy as np
from mindspore import ops

from fishbench.data.plan import FACTORS, FLIP, GRAY, ORDER


def grayscale(x: ms.Tensor) -> ms.Tensor:
    return GRAY[0] * x[:, 0:1] + GRAY[1] * x[:, 1:2] + GRAY[2] * x[:, 2:3]


def brightness(x: ms.Tensor, f: ms.Tensor) -> ms.Tensor:
    return ops.clamp(x * f, 0.0, 1.0)


def contrast(x: ms.Tensor, f: ms.Tensor) -> ms.Tensor:
    mean = grayscale(x).mean(axis=(1, 2, 3), keep_dims=True)
    return ops.clamp(f * x + (1.0 - f) * mean, 0.0, 1.0)


def saturation(x: ms.Tensor, f: ms.Tensor) -> ms.Tensor:
    return ops.clamp(f * x + (1.0 - f) * grayscale(x), 0.0, 1.0)


def hue(x: ms.Tensor, f: ms.Tensor) -> ms.Tensor:
    """Shift the hue by ``f`` turns (RGB -> HSV -> RGB, as torchvision's ``adjust_hue``)."""
    r, g, b = x[:, 0], x[:, 1], x[:, 2]
    maxc, minc = x.max(axis=1), x.min(axis=1)
    chroma = maxc - minc
    flat = chroma == 0
    ones = ops.ones_like(maxc)
    s = chroma / ops.where(flat, ones, maxc)
    c = ops.where(flat, ones, chroma)
    rc, gc, bc = (maxc - r) / c, (maxc - g) / c, (maxc - b) / c
    h = ops.where(maxc == r, bc - gc, ops.where(maxc == g, 2.0 + rc - bc, 4.0 + gc - rc))
    h = ops.floor_mod(h / 6.0 + f.reshape(-1, 1, 1), 1.0)
    v = maxc
    sector = ops.floor(h * 6.0)
    frac = h * 6.0 - sector
    sector = ops.floor_mod(sector, 6.0)
    p = ops.clamp(v * (1.0 - s), 0.0, 1.0)
    q = ops.clamp(v * (1.0 - s * frac), 0.0, 1.0)
    t = ops.clamp(v * (1.0 - s * (1.0 - frac)), 0.0, 1.0)
    channels = []
    for table in ((v, q, p, p, t, v), (t, v, v, q, p, p), (p, p, t, v, v, q)):
        out = table[5]
        for k in range(4, -1, -1):
            out = ops.where(sector == k, table[k], out)
        channels.append(out)
    return ops.stack(channels, axis=1)


JITTERS = tuple(ms.jit(op) for op in (brightness, contrast, saturation, hue))  # the plan's ids


def color_jitter(x: ms.Tensor, factors: np.ndarray, order: np.ndarray) -> ms.Tensor:
    """Apply to sample ``i`` of ``x`` (float 0..1 NCHW) jitter ``order[i, k]`` with factor
    ``factors[i, order[i, k]]`` for k = 0..3 (``factors`` and ``order`` are host arrays).

    Each (step, jitter) pair runs compiled (``ms.jit``: eager CPU kernels are several times
    slower) on the samples it picks, padded to a power of two by repeating one of them, so that
    a batch compiles at most log2(batch) + 1 shapes per jitter."""
    for step in range(order.shape[1]):
        for jid, op in enumerate(JITTERS):
            picked = np.flatnonzero(order[:, step] == jid)
            if len(picked) == 0:
                continue
            padded = np.resize(picked, min(1 << (len(picked) - 1).bit_length(), x.shape[0]))
            f = ms.Tensor(factors[padded, jid].reshape(-1, 1, 1, 1).astype(np.float32))
            if len(padded) == x.shape[0] and len(picked) == x.shape[0]:
                x = op(x, f)
                continue
            idx = ms.Tensor(padded.astype(np.int32))
            x = ops.tensor_scatter_update(x, idx.reshape(-1, 1), op(ops.gather(x, idx, 0), f))
    return x


class FloatStage:
    """Flip, jitter and normalise one batch: uint8 NHWC (numpy) -> float32 NCHW tensor."""

    def __init__(self, mean, std, flip: bool, jitter: bool) -> None:
        self.scale = ms.Tensor((1.0 / (255.0 * np.asarray(std, np.float32))).reshape(1, 3, 1, 1))
        self.shift = ms.Tensor((-np.asarray(mean, np.float32) / np.asarray(std, np.float32))
                               .reshape(1, 3, 1, 1))
        self.flip, self.jitter = flip, jitter

    def __call__(self, pixels: np.ndarray, aug: np.ndarray) -> ms.Tensor:
        x = ops.transpose(ms.Tensor(pixels), (0, 3, 1, 2)).astype(ms.float32)
        if self.flip:
            flip = ms.Tensor(aug[:, FLIP].reshape(-1, 1, 1, 1) > 0.5)
            x = ops.where(flip, ops.flip(x, (3,)), x)
        if self.jitter:
            x = color_jitter(x / 255.0, aug[:, FACTORS], aug[:, ORDER].astype(np.int64)) * 255.0
        return x * self.scale + self.shift
