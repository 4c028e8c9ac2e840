"""The PyTorch trainer: SGD with momentum, label-smoothed cross-entropy, AMP, DDP."""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
import torch.distributed as dist
import torchvision
from torch import nn

from fishbench.backends.pytorch.compile_cache import GraphCacheCounts, use_compile_cache
from fishbench.backends.pytorch.device import amp_dtype, select_device, synchronize
from fishbench.backends.pytorch.input.loaders import build_loaders
from fishbench.backends.pytorch.models import build_model
from fishbench.config import RunConfig
from fishbench.backends.pytorch.checkpoint import read_checkpoint, write_checkpoint
from fishbench.data.decode import BadFiles
from fishbench.data.spec import DataSpec
from fishbench.data.stream import TrainingStream
from fishbench.backends.base import Arrays, Trainer
from fishbench.run.checkpoints import (check_meta, check_weights_fit, host_rng_states,
                                       own_rng_states, set_host_rng_states)
from fishbench.run.cores import cpu_threads
from fishbench.run.engine import StepLogger
from fishbench.run.metrics import Accuracy
from fishbench.run.schedule import LRSchedule

log = logging.getLogger("fishbench")
# On CUDA, training runs on a stream of this priority (lower is higher; CUDA's default streams have
# the lowest, 0), so that the input pipeline's kernels on their own streams yield the SMs to it.
TRAIN_STREAM_PRIORITY: int | None = -1


def shapes(state_dict: dict[str, torch.Tensor]) -> dict[str, tuple[int, ...]]:
    return {name: tuple(tensor.shape) for name, tensor in state_dict.items()}


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Weight decay on conv/linear weights only: none on biases and normalisation parameters."""
    decay, no_decay = [], []
    for param in model.parameters():
        if param.requires_grad:
            (no_decay if param.ndim <= 1 else decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


class TorchTrainer(Trainer):
    def __init__(self, cfg: RunConfig, spec: DataSpec, rank: int = 0, world_size: int = 1,
                 local_rank: int = 0) -> None:
        super().__init__(cfg, spec, rank, world_size)
        torch.manual_seed(cfg.seed + rank)
        self.device = select_device(cfg.device, local_rank, world_size)
        if self.device.type == "cpu":  # its share of the cores, not every core
            torch.set_num_threads(cpu_threads(cfg.device.cpu_threads, cfg.world.nproc_per_node))
        accel = self.device.type != "cpu"
        self.memory_format = (torch.channels_last if accel and cfg.backend.channels_last
                              else torch.contiguous_format)
        self.model = build_model(cfg.model.name, spec.num_classes).to(
            self.device, memory_format=self.memory_format)
        self.train_model: nn.Module = self.model
        if world_size > 1:
            self.train_model = nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if accel else None)
        self.compiled = (cfg.backend.compile if cfg.backend.compile is not None
                         else self.device.type == "cuda")
        self.compile_cache: str | None = None  # the folder, when compiled
        self.graph_cache: GraphCacheCounts | None = None  # its use by the first step
        if self.compiled:
            self.compile_cache = use_compile_cache(cfg.backend.compile_cache)
            self._graphs_before = GraphCacheCounts.now()
            self.train_model = torch.compile(self.train_model, mode=cfg.backend.compile_mode)
        self.optimizer = torch.optim.SGD(parameter_groups(self.model, cfg.weight_decay),
                                         lr=cfg.lr_init, momentum=cfg.momentum)
        self.criterion = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
        self.amp_dtype = amp_dtype(self.device)
        fp16 = cfg.amp and self.amp_dtype == torch.float16
        self.scaler = torch.amp.GradScaler(
            self.device.type, enabled=fp16, init_scale=cfg.loss_scale or 2.0**16,
            growth_interval=10**9 if cfg.loss_scale else 2000)
        self.stream = (torch.cuda.Stream(self.device, priority=TRAIN_STREAM_PRIORITY)
                       if self.device.type == "cuda" and TRAIN_STREAM_PRIORITY is not None else None)
        self.bad_files = BadFiles()
        self.train_loader, self.val_loader = build_loaders(
            spec, batch_size=cfg.batch_size, bad_images=cfg.dataset.bad_images, seed=cfg.seed,
            rank=rank, world_size=world_size, device=self.device,
            memory_format=self.memory_format, bad_files=self.bad_files)
        self.train_stream = TrainingStream(self.train_loader.stream, cfg.epochs,
                                           self.steps_per_epoch)

    def settings(self) -> dict[str, Any]:
        return {"decoder": self.spec.decoder, "num_workers": self.spec.num_workers,
                "cpu_threads": torch.get_num_threads(),
                "compile_mode": self.cfg.backend.compile_mode if self.compiled else None,
                "compile_cache": self.compile_cache,
                **({"compile_cache_hits": self.graph_cache.hits,
                    "compile_cache_misses": self.graph_cache.misses} if self.graph_cache else {}),
                "precision": self.precision,
                "memory_format": ("channels_last" if self.memory_format == torch.channels_last
                                  else "contiguous")}

    @property
    def images_skipped(self) -> int:
        return len(self.bad_files)

    @cached_property
    def model_gflops_per_image(self) -> float:
        """Forward GFLOPs of one image (multiply-adds count 2), counted once with
        torch.utils.flop_counter on a copy of the model on the meta device (no compute)."""
        from torch.utils.flop_counter import FlopCounterMode

        size = self.spec.train_transform.size
        with torch.device("meta"):
            net = build_model(self.cfg.model.name, self.spec.num_classes).eval()
            image = torch.empty(1, 3, size, size)
        counter = FlopCounterMode(display=False)
        with counter, torch.no_grad():
            net(image)
        return counter.get_total_flops() / 1e9

    @property
    def accelerator(self) -> str | None:
        """The device's name for the peak-FLOP/s table (None on the CPU)."""
        return torch.cuda.get_device_name(self.device) if self.device.type == "cuda" else None

    @property
    def precision(self) -> str:
        if not self.cfg.amp:
            return "fp32"
        return "bf16" if self.amp_dtype == torch.bfloat16 else "fp16"

    @property
    def steps_per_epoch(self) -> int:
        steps = len(self.train_loader)
        return min(steps, self.cfg.max_steps_per_epoch or steps)

    def _autocast(self):
        return torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.cfg.amp)

    @contextmanager
    def _on_train_stream(self) -> Iterator[None]:
        """Run the block on :attr:`stream`, ordered after and before the current stream's work."""
        if self.stream is None:
            yield
            return
        current = torch.cuda.current_stream(self.device)
        self.stream.wait_stream(current)
        try:
            with torch.cuda.stream(self.stream):
                yield
        finally:
            current.wait_stream(self.stream)

    def train_epoch(self, epoch: int, schedule: LRSchedule, first_step: int,
                    logger: StepLogger) -> float:
        with self._on_train_stream():
            return self._train_epoch(epoch, schedule, first_step, logger)

    def _train_epoch(self, epoch: int, schedule: LRSchedule, first_step: int,
                     logger: StepLogger) -> float:
        self.train_model.train()
        loss_sum = torch.zeros((), device=self.device)
        steps = self.steps_per_epoch
        first = time.perf_counter() if self.compiled and self.graph_cache is None else None
        for i, (images, labels) in enumerate(self.train_stream.epoch(epoch)):
            lr = schedule.lr(first_step + i)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            with self._autocast():
                loss = self.criterion(self.train_model(images), labels)
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            loss = loss.detach()
            loss_sum += loss
            if first is not None:  # the step timer leaves the warm-up steps out of ms_per_step
                synchronize(self.device)
                self.graph_cache = GraphCacheCounts.now() - self._graphs_before
                log.info("first step (torch.compile) took %.1f s; compile cache %s: %d graph(s) "
                         "loaded from it, %d compiled", time.perf_counter() - first,
                         self.compile_cache, self.graph_cache.hits, self.graph_cache.misses)
                first = None
            if logger.due(i):
                synchronize(self.device)
            logger.step(epoch, i, first_step + i + 1, lr, loss)
        return float(self._all_reduce(loss_sum)) / (steps * self.world_size)

    @property
    def val_steps(self) -> int:
        return len(self.val_loader)

    def close(self) -> None:
        self.train_stream.close()

    @torch.no_grad()
    def evaluate(self, on_batch: Callable[[], None] | None = None) -> Accuracy:
        self._use_rank0_buffers()
        self.model.eval()
        acc = Accuracy()
        for images, labels in self.val_loader:
            with self._autocast():
                logits = self.model(images)
            acc.update(logits.float().cpu().numpy(), labels.cpu().numpy())
            if on_batch is not None:
                on_batch()
        counts = self._all_reduce(torch.tensor(acc.counts, dtype=torch.float64, device=self.device))
        return Accuracy.from_counts([round(c) for c in counts.tolist()])

    def _use_rank0_buffers(self) -> None:
        """Give every rank rank 0's buffers (BatchNorm's running statistics): DDP broadcasts them
        before each training forward, which then updates each rank's copy with its own batch, so
        after the last step they differ. The ranks then evaluate the one model rank 0 saves."""
        if self.world_size > 1:
            for buffer in self.model.buffers():
                dist.broadcast(buffer, 0)

    def _all_reduce(self, values: torch.Tensor) -> torch.Tensor:
        if self.world_size > 1:
            dist.all_reduce(values)
        return values

    def rank_rng_states(self) -> list[dict[str, Any]]:
        mine = {"torch": torch.get_rng_state(), **host_rng_states()}
        if self.world_size == 1:
            return [mine]
        states: list[Any] = [None] * self.world_size
        dist.all_gather_object(states, mine)
        return states

    def save_checkpoint(self, path: Path, meta: dict[str, Any],
                        rng_states: list[dict[str, Any]]) -> None:
        write_checkpoint(path, {"meta": meta, "state_dict": self.model.state_dict(),
                                "optimizer": self.optimizer.state_dict(),
                                "scaler": self.scaler.state_dict(), "rng": rng_states})

    def load_checkpoint(self, path: Path, full: bool) -> dict[str, Any]:
        saved = read_checkpoint(path)
        meta = saved["meta"]
        check_meta(meta, self.cfg, path)
        check_weights_fit(path, self.cfg, shapes(self.model.state_dict()),
                          shapes(saved["state_dict"]))
        self.model.load_state_dict(saved["state_dict"])
        if full:
            self.optimizer.load_state_dict(saved["optimizer"])
            self.scaler.load_state_dict(saved["scaler"])
            rng = own_rng_states(saved["rng"], self.rank)
            torch.set_rng_state(rng["torch"])
            set_host_rng_states(rng)
        return meta

    def load_weights(self, weights: Arrays) -> None:
        try:
            self.model.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()})
        except RuntimeError as err:  # torch's report of missing, unexpected or reshaped names
            raise ValueError(str(err)) from None

    def weights_finite(self) -> bool:
        return all(bool(torch.isfinite(t).all()) for t in self.model.state_dict().values()
                   if t.is_floating_point())

    def versions(self) -> dict[str, str]:
        return {"torch": torch.__version__, "torchvision": torchvision.__version__}
