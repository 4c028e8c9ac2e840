"""The PyTorch backend (CPU, CUDA GPUs, Ascend NPUs through torch_npu): what the hall asks of it.

Framework-free at import: torch is imported inside the methods.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from fishbench.backends.base import Arrays, Backend, BackendSection, Trainer
from fishbench.config.checks import check_choice

COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


@dataclass
class PyTorchSection(BackendSection):
    """``conf/backend/pytorch.yaml``."""

    name: str = "pytorch"
    channels_last: bool = True  # on GPU/NPU only
    compile: Optional[bool] = None  # None: on for training on a GPU, off elsewhere
    compile_mode: str = "default"  # torch.compile's mode (COMPILE_MODES)
    compile_cache: Optional[str] = None  # torch.compile's cache folder; None: torch's default

    def check(self) -> None:
        check_choice("backend.compile_mode", self.compile_mode, COMPILE_MODES)


class PyTorchBackend(Backend):
    name = "pytorch"
    checkpoint_suffix = ".pt"
    config_section = PyTorchSection

    def decoders(self, cfg: Any) -> tuple[str, ...]:
        return ("gpu", "cpu") if cfg.device.name == "gpu" else ("cpu",)

    def check_runtime(self, cfg: Any) -> None:
        from fishbench.backends.pytorch.device import check_device

        check_device(cfg.device, cfg.world.nproc_per_node)

    def create_trainer(self, cfg: Any, spec: Any, rank: int = 0, world_size: int = 1,
                       local_rank: int = 0) -> Trainer:
        from fishbench.backends.pytorch.trainer import TorchTrainer

        return TorchTrainer(cfg, spec, rank, world_size, local_rank)

    def launch_workers(self, world: Any, port: int, run_dir: Path) -> None:
        from fishbench.backends.pytorch.launch import elastic_launch_workers

        elastic_launch_workers(world, port, run_dir)

    def join_workers(self, cfg: Any) -> tuple[int, int, int]:
        from fishbench.backends.pytorch.launch import join_process_group

        return join_process_group(cfg)

    def leave_workers(self) -> None:
        from fishbench.backends.pytorch.launch import leave_process_group

        leave_process_group()

    def read_weights(self, path: Path, model_name: str) -> tuple[Arrays, dict[str, Any]]:
        from fishbench.backends.pytorch.checkpoint import read_weights

        return read_weights(path, model_name)

    def export(self, trainer: Trainer, stem: Path, shape: tuple[int, ...]) -> dict[str, Path]:
        from fishbench.backends.pytorch.export import export

        return export(trainer, stem, shape)
