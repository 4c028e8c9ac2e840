"""The float stage of the PyTorch input pipeline, once per batch on the device.

Takes the batch as uint8 NHWC (as the workers and the gpu engine's kernel write it) and the plan's per-sample numbers
(:meth:`fishbench.data.plan.SampleAugment.vector`): horizontal flip, colour jitter (brightness,
contrast, saturation, hue, each sample in its own order, torchvision's ``ColorJitter`` math on
floats), normalisation, channels_last.
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
    """Shift the hue by ``f`` turns (RGB -> HSV -> RGB, as torchvision's ``adjust_hue``). Back to
    RGB by the direct formula: channel n (R 5, G 3, B 1) is ``v - v s clamp(min(k, 4 - k), 0, 1)``
    with ``k = (n + 6 h) mod 6``, which equals torchvision's six-sector table."""
    maxc, minc = x.amax(1, keepdim=True), x.amin(1, keepdim=True)
    chroma = maxc - minc
    flat = chroma == 0
    s = chroma / torch.where(flat, torch.ones_like(maxc), maxc)
    c = torch.where(flat, torch.ones_like(chroma), chroma)
    rc, gc, bc = ((maxc - x) / c).split(1, dim=1)
    r, g, _ = x.split(1, dim=1)
    h = torch.where(maxc == r, bc - gc, torch.where(maxc == g, 2.0 + rc - bc, 4.0 + gc - rc))
    h = torch.remainder(h / 6.0 + f, 1.0)
    k = torch.remainder(torch.cat([n + 6.0 * h for n in (5.0, 3.0, 1.0)], dim=1), 6.0)
    return maxc - maxc * s * torch.minimum(k, 4.0 - k).clamp(0.0, 1.0)


CONTRAST = 1  # the jitter id (plan order) of the one jitter that needs a whole-image number
POINTWISE = {0: brightness, 2: saturation, 3: hue}  # the others, by id


def color_jitter(x: torch.Tensor, factors: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
    """Apply to sample ``i`` of ``x`` (float 0..1 NCHW) jitter ``order[i, k]`` with factor
    ``factors[i, order[i, k]]`` for k = 0..3 (every order holds each jitter once). Only the
    contrast reads the whole image (its mean grey, as the image reaches it); the jitters before
    and after it are pointwise. So the batch goes through the steps before each sample's
    contrast, the mean, the contrast, then the steps after it: one reduction, and every step
    computed for the whole batch with each sample keeping the jitter its order picks (fixed
    shapes, no host sync), which ``torch.compile`` fuses into a few passes."""
    at = (order == CONTRAST).float().argmax(dim=1).view(-1, 1, 1, 1)
    f = factors.view(-1, 4, 1, 1, 1)

    def steps(x: torch.Tensor, applies) -> torch.Tensor:
        for step in range(order.shape[1]):
            picked = order[:, step].view(-1, 1, 1, 1)
            out = x
            for jid, op in POINTWISE.items():
                out = torch.where(picked == jid, op(x, f[:, jid]), out)
            x = torch.where(applies(step), out, x)
        return x

    x = steps(x, lambda step: step < at)
    x = contrast(x, f[:, CONTRAST])
    return steps(x, lambda step: step > at)


class FloatStage:
    """Flip, jitter, normalise and lay out one batch (see the module's docstring); ``compiled``
    runs it through ``torch.compile`` (on the GPU: one pass over the batch instead of dozens)."""

    def __init__(self, mean, std, device: torch.device, memory_format: torch.memory_format,
                 flip: bool, jitter: bool, compiled: bool = False) -> None:
        self.scale = (1.0 / (255.0 * torch.tensor(std, device=device))).view(1, 3, 1, 1)
        self.shift = (-torch.tensor(mean, device=device) / torch.tensor(std, device=device)).view(1, 3, 1, 1)
        self.memory_format, self.flip, self.jitter = memory_format, flip, jitter
        self.apply = self._apply
        if compiled:
            # The prefetch threads call the stage while the training thread may be tracing the
            # model for torch.compile; dynamo's "nested FX trace" check reads a process-wide flag
            # and would raise in this thread: let such calls run the stage eagerly instead.
            torch._dynamo.config.error_on_nested_fx_trace = False
            self.apply = torch.compile(self._apply)

    def __call__(self, images: torch.Tensor, aug: torch.Tensor) -> torch.Tensor:
        """``images`` uint8 NHWC; ``aug`` the plan's numbers on the same device."""
        return self.apply(images, aug)

    def _apply(self, images: torch.Tensor, aug: torch.Tensor) -> torch.Tensor:
        x = images.permute(0, 3, 1, 2).float()
        if self.flip:
            x = torch.where(aug[:, FLIP].view(-1, 1, 1, 1) > 0.5, x.flip(3), x)
        if self.jitter:
            x = color_jitter(x / 255.0, aug[:, FACTORS], aug[:, ORDER]) * 255.0
        return (x * self.scale + self.shift).contiguous(memory_format=self.memory_format)
