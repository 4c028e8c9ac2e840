"""Export of the MindSpore model to MINDIR, ONNX and (with the Ascend stack) AIR."""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Iterator

import mindspore as ms
import numpy as np
from mindspore import nn, ops

from fishbench.backends.mindspore.models import fishnet

log = logging.getLogger("fishbench")
SUFFIXES = {"MINDIR": ".mindir", "ONNX": ".onnx", "AIR": ".air"}


def export(trainer, stem: Path, shape: tuple[int, ...]) -> dict[str, Path]:
    """Write ``<stem>.mindir``, ``<stem>.onnx`` and, on an Ascend host, ``<stem>.air``."""
    net = trainer.net
    net.set_train(False)
    sample = ms.Tensor(np.zeros(shape, np.float32))
    formats = ["MINDIR"]
    if trainer.cfg.device.name == "ascend":  # the runtime check found CANN
        formats.append("AIR")
    else:
        log.warning("AIR export skipped: MindSpore writes AIR only with the Ascend stack (CANN) "
                    "on device=ascend. Run task=export device=ascend on an Ascend host for it.")
    files = {}
    for fmt in formats:
        ms.export(net, sample, file_name=str(stem), file_format=fmt)
        files[fmt.lower()] = stem.with_suffix(SUFFIXES[fmt])
    with onnx_exportable(net):
        ms.export(net, sample, file_name=str(stem), file_format="ONNX")
    files["onnx"] = stem.with_suffix(SUFFIXES["ONNX"])
    return files


class ZeroPaddedMaxPool(nn.Cell):
    """``MaxPool2d(pad_mode="pad")`` as zero padding + valid pooling.

    The same values on non-negative inputs (both models max-pool ReLU outputs), built from ops
    that MindSpore's ONNX exporter knows (it lacks MaxPool3DWithArgmax and PadV3).
    """

    def __init__(self, pool: nn.MaxPool2d) -> None:
        super().__init__()
        _, pad_h, pad_w = pool.padding
        self.pad = nn.Pad(((0, 0), (0, 0), (pad_h, pad_h), (pad_w, pad_w)))
        self.pool = nn.MaxPool2d(pool.kernel_size, pool.stride)

    def construct(self, x: ms.Tensor) -> ms.Tensor:
        return self.pool(self.pad(x))


def _upsample_nearest2x(x: ms.Tensor) -> ms.Tensor:
    """FishNet's 2x nearest up-sampling through ResizeNearestNeighbor (exportable to ONNX)."""
    h, w = x.shape[-2:]
    return ops.ResizeNearestNeighbor((h * 2, w * 2))(x)


@contextlib.contextmanager
def onnx_exportable(net: nn.Cell) -> Iterator[None]:
    """Temporarily replace the two ops of the models that the ONNX exporter cannot write
    (padded max-pool; ``interpolate``'s ResizeNearestNeighborV2) by equivalent ones."""
    swapped = []
    for _, cell in net.cells_and_names():
        for name, child in cell.name_cells().items():
            if isinstance(child, nn.MaxPool2d) and child.use_pad:
                swapped.append((cell, name, child))
                setattr(cell, name, ZeroPaddedMaxPool(child))
    upsample = fishnet.upsample_nearest2x
    fishnet.upsample_nearest2x = _upsample_nearest2x
    try:
        yield
    finally:
        fishnet.upsample_nearest2x = upsample
        for cell, name, child in swapped:
            setattr(cell, name, child)
