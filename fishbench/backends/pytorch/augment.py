"""The float stage of the PyTorch input pipeline, once per batch on the device.

Takes the batch as float 0..255 NCHW and the plan's per-sample numbers
(:data:`fishbench.data.plan.AUG_FIELDS`): horizontal flip, colour jitter (brightness, contrast,
saturation, hue, each sample in its own order, torchvision's ``ColorJitter`` math on floats),
normalisation, channels_last.
"""

from __future__ import annotations

import torch

from fishbench.data.plan import FACTORS, FLIP, GRAY, ORDER


def grayscale(x: torch.Tensor) -> torch.Tensor:
    r, g, b = x.unbind(1)
    return (GRAY[0] * r + GRAY[1] * g + GRAY[2] * b).unsqueeze(1)


def brightness(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    return (x * f).clamp(0.0, 1.0)


def contrast(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    mean = grayscale(x).mean(dim=(1, 2, 3), keepdim=True)
    return (f * x + (1.0 - f) * mean).clamp(0.0, 1.0)


def saturation(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    return (f * x + (1.0 - f) * grayscale(x)).clamp(0.0, 1.0)


def hue(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """Shift the hue by ``f`` turns (RGB -> HSV -> RGB, as torchvision's ``adjust_hue``)."""
    r, g, b = x.unbind(1)
    maxc, minc = x.amax(1), x.amin(1)
    chroma = maxc - minc
    flat = chroma == 0
    s = chroma / torch.where(flat, torch.ones_like(maxc), maxc)
    c = torch.where(flat, torch.ones_like(chroma), chroma)
    rc, gc, bc = (maxc - r) / c, (maxc - g) / c, (maxc - b) / c
    h = torch.where(maxc == r, bc - gc, torch.where(maxc == g, 2.0 + rc - bc, 4.0 + gc - rc))
    h = torch.remainder(h / 6.0 + f.view(-1, 1, 1), 1.0)
    v = maxc
    sector = torch.floor(h * 6.0)
    frac = h * 6.0 - sector
    sector = sector.long() % 6
    p = (v * (1.0 - s)).clamp(0.0, 1.0)
    q = (v * (1.0 - s * frac)).clamp(0.0, 1.0)
    t = (v * (1.0 - s * (1.0 - frac))).clamp(0.0, 1.0)
    table = torch.stack([torch.stack(c, 1) for c in ((v, q, p, p, t, v), (t, v, v, q, p, p),
                                                      (p, p, t, v, v, q))], 1)  # N,3,6,H,W
    return table.gather(2, sector[:, None, None].expand(-1, 3, 1, -1, -1)).squeeze(2)


JITTERS = (brightness, contrast, saturation, hue)  # the jitter ids of the plan


def color_jitter(x: torch.Tensor, factors: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
    """Apply to sample ``i`` of ``x`` (float 0..1 NCHW) jitter ``order[i, k]`` with factor
    ``factors[i, order[i, k]]`` for k = 0..3. ``order`` is on the host: it picks the samples
    of each (step, jitter) pair, so every jitter runs once over the batch per step."""
    for step in range(order.shape[1]):
        for jid, op in enumerate(JITTERS):
            picked = (order[:, step] == jid).nonzero().flatten()
            if len(picked) == 0:
                continue
            if len(picked) == len(x):
                x = op(x, factors[:, jid].view(-1, 1, 1, 1))
                continue
            idx = picked.to(x.device, non_blocking=True)
            x = x.index_copy(0, idx, op(x.index_select(0, idx),
                                         factors.index_select(0, idx)[:, jid].view(-1, 1, 1, 1)))
    return x


class FloatStage:
    """Flip, jitter, normalise and lay out one batch (see the module's docstring)."""

    def __init__(self, mean, std, device: torch.device, memory_format: torch.memory_format,
                 flip: bool, jitter: bool) -> None:
        self.scale = (1.0 / (255.0 * torch.tensor(std, device=device))).view(1, 3, 1, 1)
        self.shift = (-torch.tensor(mean, device=device) / torch.tensor(std, device=device)).view(1, 3, 1, 1)
        self.memory_format, self.flip, self.jitter = memory_format, flip, jitter

    def __call__(self, images: torch.Tensor, aug: torch.Tensor, host_aug: torch.Tensor) -> torch.Tensor:
        """``images`` float 0..255 NCHW; ``aug`` the plan's numbers on the device, ``host_aug``
        the same on the host."""
        x = images
        if self.flip:
            x = torch.where(aug[:, FLIP].view(-1, 1, 1, 1) > 0.5, x.flip(3), x)
        if self.jitter:
            x = color_jitter(x / 255.0, aug[:, FACTORS], host_aug[:, ORDER].long()) * 255.0
        return (x * self.scale + self.shift).contiguous(memory_format=self.memory_format)
