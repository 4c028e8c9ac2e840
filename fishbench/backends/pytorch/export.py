"""Export of the PyTorch model to ONNX (``task=export``)."""

from __future__ import annotations

from pathlib import Path

import torch

from fishbench.errors import FishbenchError
from fishbench.run.export import INPUT_NAME, OUTPUT_NAME


def export(trainer, stem: Path, shape: tuple[int, ...]) -> dict[str, Path]:
    """Write ``<stem>.onnx`` with torch's exporter (torch.export based; needs onnxscript)."""
    path = stem.with_suffix(".onnx")
    model = trainer.model.eval()
    sample = torch.zeros(shape, device=trainer.device)
    try:
        torch.onnx.export(model, (sample,), str(path), input_names=[INPUT_NAME],
                          output_names=[OUTPUT_NAME], dynamo=True, verbose=False)
    except ImportError as err:
        raise FishbenchError(f"task=export needs the ONNX packages ({err}). Install them with "
                             "`pip install -e .[onnx]`.") from None
    return {"onnx": path}
