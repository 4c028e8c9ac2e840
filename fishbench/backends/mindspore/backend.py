"""The MindSpore backend (CPU, GPU with CUDA 11, Ascend with CANN): what the hall asks of it.

Framework-free at import: mindspore is imported inside the methods.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from fishbench.backends.base import Arrays, Backend, BackendSection, Trainer
from fishbench.config.checks import check, check_choice


@dataclass
class MindSporeSection(BackendSection):
    """``conf/backend/mindspore.yaml``."""

    name: str = "mindspore"
    mode: Optional[str] = None  # graph | pynative (None: graph)
    amp_level: str = "auto"  # O0 | O1 | O2 | O3 | auto

    def check(self) -> None:
        check(self.mode in (None, "graph", "pynative"), "backend.mode", self.mode,
              "graph, pynative or null")
        check_choice("backend.amp_level", self.amp_level, ("auto", "O0", "O1", "O2", "O3"))


class MindSporeBackend(Backend):
    name = "mindspore"
    checkpoint_suffix = ".ckpt"
    config_section = MindSporeSection

    def decoders(self, cfg: Any) -> tuple[str, ...]:
        return ("cpu",)

    def check_runtime(self, cfg: Any) -> None:
        from fishbench.backends.mindspore.device import check_device

        check_device(cfg)

    def keep_dumps_in(self, run_dir: Path) -> None:
        """MindSpore writes ``rank_<r>/om/analyze_fail.ir`` (a graph compile that failed or was
        interrupted) under ``MS_OM_PATH``, else under the current dir."""
        os.environ["MS_OM_PATH"] = str(run_dir)

    def create_trainer(self, cfg: Any, spec: Any, rank: int = 0, world_size: int = 1,
                       local_rank: int = 0) -> Trainer:
        from fishbench.backends.mindspore.trainer import MindSporeTrainer

        return MindSporeTrainer(cfg, spec, rank, world_size, local_rank)

    def launch_workers(self, world: Any, port: int, run_dir: Path) -> None:
        from fishbench.backends.mindspore.launch import msrun_launch_workers

        msrun_launch_workers(world, port, run_dir)

    def join_workers(self, cfg: Any) -> tuple[int, int, int]:
        from fishbench.backends.mindspore.launch import join_cluster

        return join_cluster(cfg)

    def leave_workers(self) -> None:
        from fishbench.backends.mindspore.launch import leave_cluster

        leave_cluster()

    def read_weights(self, path: Path, model_name: str) -> tuple[Arrays, dict[str, Any]]:
        from fishbench.backends.mindspore.checkpoint import read_weights

        return read_weights(path, model_name)

    def export(self, trainer: Trainer, stem: Path, shape: tuple[int, ...]) -> dict[str, Path]:
        from fishbench.backends.mindspore.export import export

        return export(trainer, stem, shape)
