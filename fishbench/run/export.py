"""``task=export``: write a checkpoint's model into the run dir for deployment.

The backend's ``export`` module writes the files (PyTorch: ONNX; MindSpore: MINDIR, ONNX and,
where the Ascend stack is present, AIR). Every file takes one image of the configured size
(batch 1, as the reference's Ascend-310 inference) and returns the logits.
"""

from __future__ import annotations

import importlib
import logging
from pathlib import Path
from typing import Any

from fishbench.config import RunConfig
from fishbench.run.engine import Trainer

log = logging.getLogger("fishbench")
INPUT_NAME, OUTPUT_NAME = "image", "logits"


def export_model(config: RunConfig, trainer: Trainer, source: Path, run_dir: Path) -> dict[str, Any]:
    """Load the weights of ``source`` into ``trainer`` and export them as ``run_dir/<model>.*``."""
    meta = trainer.load_checkpoint(source, full=False)
    backend = importlib.import_module(f"fishbench.backends.{config.backend.name}.export")
    size = config.dataset.image_size
    files: dict[str, Path] = backend.export(trainer, run_dir / config.model.name, (1, 3, size, size))
    for fmt, path in files.items():
        log.info("exported %s: %s", fmt.upper(), path)
    return {"exported": {fmt: str(path) for fmt, path in files.items()},
            "ckpt_path": str(source), "epochs": meta.get("epoch", 0),
            "steps": meta.get("global_step", 0)}
