"""Crop + antialiased bilinear resize of a whole batch of decoded images in two kernel launches.

The ``gpu`` engine's images (uint8 CHW, each its own size, as nvjpeg returns them) are cut to
their :class:`~fishbench.data.decode.Crop` and resized into one uint8 NHWC batch, at given
positions. PIL's and torch's antialiased bilinear filter (a triangle as wide as the scale when
shrinking), sampled as PIL's ``resize(box=...)`` does (the taps may reach past the box, up to the
image's edge), separable: a rows pass into a float buffer, then a columns pass that rounds to
uint8. The images travel as a table of their addresses, so the batch costs two launches however
many images it has (one ``F.interpolate`` per image took ~7 ms of host time per 256 images, these
~0.7 ms: ``python benchmarks/input_pipeline.py ... --check``). Triton kernels: on CUDA, or on the
CPU with ``TRITON_INTERPRET=1`` (the tests).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import triton
import triton.language as tl

from fishbench.data.decode import Crop

# The kernels' table, a row per image (float32): its height and width; per axis (rows, columns)
# the source coordinate of the first output pixel's left edge and the scale (source pixels per
# output pixel); the first source column the rows pass keeps and how many; the batch position.
HEIGHT, WIDTH = tl.constexpr(0), tl.constexpr(1)
Y_START, Y_SCALE, X_START, X_SCALE = tl.constexpr(2), tl.constexpr(3), tl.constexpr(4), tl.constexpr(5)
X_FIRST, X_COUNT, POSITION, FIELDS = tl.constexpr(6), tl.constexpr(7), tl.constexpr(8), tl.constexpr(9)
# A program of either pass makes a block of output rows of one image: the rows pass in tiles of
# ROWS x ROW_BLOCK source columns, the columns pass COLUMN_ROWS whole rows (one column a thread).
ROWS, ROW_BLOCK, COLUMN_ROWS, COLUMN_WARPS = 8, 128, 8, 8


@triton.jit
def _taps(start, scale, out_index, size):
    """The source range ``[lo, hi)`` an output coordinate reads, and its filter's ``1 / width``."""
    center = start + (out_index + 0.5) * scale
    support = tl.maximum(scale, 1.0)
    lo = tl.maximum(tl.floor(center - support + 0.5), 0.0).to(tl.int32)
    hi = tl.minimum(tl.floor(center + support + 0.5), size).to(tl.int32)
    return center, lo, hi, 1.0 / support


@triton.jit
def _weight(index, center, inv, use):
    """The filter's weight of source pixel ``index`` where ``use``, else 0 (adds nothing)."""
    return tl.where(use, tl.maximum(1.0 - tl.abs((index - center + 0.5) * inv), 0.0), 0.0)


@triton.jit
def _rows_kernel(pointers, geometry, mid, mid_width, size, ROWS: tl.constexpr,
                 BLOCK: tl.constexpr):
    """``mid[n, c, y, j]``: output row ``y`` of image ``n`` at source column ``X_FIRST + j``. A
    program makes ``ROWS`` output rows ``y`` (past ``size - 1``: the last again, stored again),
    ``BLOCK`` columns a step up to the image's own ``X_COUNT``; each row adds its taps in source
    order, padded to the block's most taps with zero weights, which change no sum."""
    n = tl.program_id(0)
    g = geometry + n * FIELDS
    height, width = tl.load(g + HEIGHT), tl.load(g + WIDTH).to(tl.int32)
    y = tl.minimum(tl.program_id(1) * ROWS + tl.arange(0, ROWS)[:, None], size - 1)
    center, lo, hi, inv = _taps(tl.load(g + Y_START), tl.load(g + Y_SCALE), y, height)
    taps = tl.max(hi - lo)
    count = tl.load(g + X_COUNT).to(tl.int32)
    plane = height.to(tl.int32) * width
    image = tl.load(pointers + n).to(tl.pointer_type(tl.uint8)) + tl.load(g + X_FIRST).to(tl.int32)
    out = mid + (n * 3 * size + y) * mid_width
    channel = size * mid_width
    for start in range(0, count, BLOCK):
        cols = start + tl.arange(0, BLOCK)[None, :]
        keep = cols < count
        r = tl.zeros((ROWS, BLOCK), tl.float32)
        gr = tl.zeros((ROWS, BLOCK), tl.float32)
        b = tl.zeros((ROWS, BLOCK), tl.float32)
        total = tl.zeros((ROWS, 1), tl.float32)
        for k in range(0, taps):
            row = lo + k
            use = row < hi
            w = _weight(row, center, inv, use)
            total += w
            at = image + row * width + cols
            read = keep & use
            r += w * tl.load(at, mask=read, other=0).to(tl.float32)
            gr += w * tl.load(at + plane, mask=read, other=0).to(tl.float32)
            b += w * tl.load(at + 2 * plane, mask=read, other=0).to(tl.float32)
        tl.store(out + cols, r / total, mask=keep)
        tl.store(out + channel + cols, gr / total, mask=keep)
        tl.store(out + 2 * channel + cols, b / total, mask=keep)


@triton.jit
def _columns_kernel(geometry, mid, mid_width, batch, size, max_taps, ROWS: tl.constexpr,
                    BLOCK: tl.constexpr):
    """``batch[position, y, x, c]`` (uint8 NHWC) from rows ``y`` of ``mid``, ``ROWS`` rows a
    program (past ``size - 1``: the last again), which share the columns' taps and weights."""
    n = tl.program_id(0)
    g = geometry + n * FIELDS
    y = tl.minimum(tl.program_id(1) * ROWS + tl.arange(0, ROWS)[:, None], size - 1)
    x = tl.arange(0, BLOCK)[None, :]
    inside = x < size
    center, lo, hi, inv = _taps(tl.load(g + X_START), tl.load(g + X_SCALE), x, tl.load(g + WIDTH))
    row = mid + (n * 3 * size + y) * mid_width - tl.load(g + X_FIRST).to(tl.int32)
    channel = size * mid_width
    r = tl.zeros((ROWS, BLOCK), tl.float32)
    gr = tl.zeros((ROWS, BLOCK), tl.float32)
    b = tl.zeros((ROWS, BLOCK), tl.float32)
    total = tl.zeros((1, BLOCK), tl.float32)
    for k in range(0, max_taps):
        col = lo + k
        use = inside & (col < hi)
        w = _weight(col, center, inv, use)
        total += w
        at = row + col
        r += w * tl.load(at, mask=use, other=0.0)
        gr += w * tl.load(at + channel, mask=use, other=0.0)
        b += w * tl.load(at + 2 * channel, mask=use, other=0.0)
    total = tl.where(inside, total, 1.0)
    out = batch + ((tl.load(g + POSITION).to(tl.int32) * size + y) * size + x) * 3
    tl.store(out, _to_uint8(r / total), mask=inside)
    tl.store(out + 1, _to_uint8(gr / total), mask=inside)
    tl.store(out + 2, _to_uint8(b / total), mask=inside)


@triton.jit
def _to_uint8(value):
    return tl.minimum(tl.maximum(tl.floor(value + 0.5), 0.0), 255.0).to(tl.uint8)


def geometry_of(crops: list[Crop], image_sizes: list[tuple[int, int]], positions: list[int]
                ) -> tuple[np.ndarray, int, int]:
    """The per-image table of the kernels, the rows pass's buffer width and the most taps an
    output column reads. ``image_sizes`` are (width, height)."""
    table = np.zeros((len(crops), FIELDS.value), np.float32)
    widest, taps = 1, 1
    for i, (crop, (width, height), position) in enumerate(zip(crops, image_sizes, positions)):
        (rw, rh), (left, top, right, bottom) = crop.resized, crop.box
        if (rw, rh) == (width, height):  # training: the box is in the image, scaled to size
            y_scale, x_scale = (bottom - top) / crop.size, (right - left) / crop.size
            y_start, x_start = float(top), float(left)
        else:  # evaluation: the whole image resized to (rw, rh), the box cut from that
            y_scale, x_scale = height / rh, width / rw
            y_start, x_start = top * y_scale, left * x_scale
        support = max(x_scale, 1.0)
        first = max(math.floor(x_start - support + 0.5), 0)
        last = min(math.ceil(x_start + crop.size * x_scale + support + 0.5), width)
        widest = max(widest, last - first)
        taps = max(taps, math.ceil(2 * support) + 1)
        table[i] = (height, width, y_start, y_scale, x_start, x_scale, first, last - first,
                    position)
    return table, widest, taps


def crop_resize_into(batch: torch.Tensor, images: list[torch.Tensor], crops: list[Crop],
                     positions: list[int]) -> None:
    """Write ``crops`` of ``images`` (uint8 CHW, RGB, on ``batch``'s device) into ``batch``
    (uint8 NHWC, contiguous, ``size x size``) at ``positions``, on the current stream. The
    images must stay alive (on CUDA: be ``record_stream``-ed) until the launches have run."""
    if not images:
        return
    size = batch.shape[1]
    assert batch.is_contiguous() and batch.dtype == torch.uint8
    assert batch.shape[1:] == (size, size, 3)
    images = [image if image.is_contiguous() else image.contiguous() for image in images]
    sizes = [(int(image.shape[2]), int(image.shape[1])) for image in images]
    table, widest, taps = geometry_of(crops, sizes, positions)
    device = batch.device
    pointers = torch.tensor([image.data_ptr() for image in images], dtype=torch.int64)
    # from pinned memory the copies are queued; from pageable memory they would first wait for
    # the stream's earlier work, blocking this thread
    pointers, geometry = ((t.pin_memory() if device.type == "cuda" else t).to(device, non_blocking=True)
                          for t in (pointers, torch.from_numpy(table)))
    mid = torch.empty((len(images), 3, size, widest), dtype=torch.float32, device=device)
    _rows_kernel[(len(images), triton.cdiv(size, ROWS))](
        pointers, geometry, mid, widest, size, ROWS=ROWS, BLOCK=ROW_BLOCK)
    _columns_kernel[(len(images), triton.cdiv(size, COLUMN_ROWS))](
        geometry, mid, widest, batch, size, taps, ROWS=COLUMN_ROWS,
        BLOCK=triton.next_power_of_2(size), num_warps=COLUMN_WARPS)
