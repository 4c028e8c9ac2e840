"""``task=export``: write a checkpoint's model into the run dir for deployment.

The backend writes the files (PyTorch: ONNX; MindSpore: MINDIR, ONNX and,
where the Ascend stack is present, AIR). Every file takes one image of the configured size
(batch 1, as the reference's Ascend-310 inference) and returns the logits.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from fishbench.backends import get_backend
from fishbench.backends.base import Trainer
from fishbench.config import RunConfig
from fishbench.run.checkpoints import load_checkpoint_into

log = logging.getLogger("fishbench")
INPUT_NAME, OUTPUT_NAME = "image", "logits"


def export_model(config: RunConfig, trainer: Trainer, source: Path, run_dir: Path) -> dict[str, Any]:
    """Load the weights of ``source`` into ``trainer`` and export them as ``run_dir/<model>.*``."""
    backend = get_backend(config.backend.name)
    meta = load_checkpoint_into(trainer, source, backend.checkpoint_suffix, full=False)
    size = config.dataset.image_size
    files: dict[str, Path] = backend.export(trainer, run_dir / config.model.name, (1, 3, size, size))
    for fmt, path in files.items():
        log.info("exported %s: %s", fmt.upper(), path)
    return {"exported": {fmt: str(path) for fmt, path in files.items()},
            "ckpt_path": str(source), "epochs": meta.get("epoch", 0),
            "steps": meta.get("global_step", 0)}
