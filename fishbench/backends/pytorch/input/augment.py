"""The float stage of the PyTorch input pipeline, once per batch on the device.

Takes the batch as uint8 NHWC (as the workers and the gpu engine write it) and the plan's
per-sample numbers (:meth:`fishbench.data.plan.SampleAugment.vector`): horizontal flip, colour jitter (brightness,
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


JITTERS = (brightness, contrast, saturation, hue)  # the jitter ids of the plan


def color_jitter(x: torch.Tensor, factors: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
    """Apply to sample ``i`` of ``x`` (float 0..1 NCHW) jitter ``order[i, k]`` with factor
    ``factors[i, order[i, k]]`` for k = 0..3. Each of the four steps computes every jitter for
    the whole batch and keeps, per sample, the one the plan picked: fixed shapes, no host sync,
    so that the stage runs as a few whole-batch ops."""
    for step in range(order.shape[1]):
        picked = order[:, step].view(-1, 1, 1, 1)
        out = x
        for jid, op in enumerate(JITTERS):
            out = torch.where(picked == jid, op(x, factors[:, jid].view(-1, 1, 1, 1)), out)
        x = out
    return x


class FloatStage:
    """Flip, jitter, normalise and lay out one batch (see the module's docstring). On CUDA the
    stage runs as two Triton kernels (:mod:`~fishbench.backends.pytorch.input.augment_kernel`: each
    sample's own jitters, two passes over the batch), elsewhere as these torch ops."""

    def __init__(self, mean, std, device: torch.device, memory_format: torch.memory_format,
                 flip: bool, jitter: bool) -> None:
        self.mean, self.std = tuple(mean), tuple(std)
        self.scale = (1.0 / (255.0 * torch.tensor(std, device=device))).view(1, 3, 1, 1)
        self.shift = (-torch.tensor(mean, device=device) / torch.tensor(std, device=device)).view(1, 3, 1, 1)
        self.memory_format, self.flip, self.jitter = memory_format, flip, jitter

    def __call__(self, images: torch.Tensor, aug: torch.Tensor) -> torch.Tensor:
        """``images`` uint8 NHWC; ``aug`` the plan's numbers on the same device."""
        if images.is_cuda:
            return self.kernels(images, aug)
        return self.torch_ops(images, aug)

    def kernels(self, images: torch.Tensor, aug: torch.Tensor) -> torch.Tensor:
        from fishbench.backends.pytorch.input.augment_kernel import float_stage

        out = float_stage(images, aug, self.mean, self.std, self.flip, self.jitter)
        return out.contiguous(memory_format=self.memory_format)

    def torch_ops(self, images: torch.Tensor, aug: torch.Tensor) -> torch.Tensor:
        x = images.permute(0, 3, 1, 2).float()
        if self.flip:
            x = torch.where(aug[:, FLIP].view(-1, 1, 1, 1) > 0.5, x.flip(3), x)
        if self.jitter:
            x = color_jitter(x / 255.0, aug[:, FACTORS], aug[:, ORDER]) * 255.0
        return (x * self.scale + self.shift).contiguous(memory_format=self.memory_format)
