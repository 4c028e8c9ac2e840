"""The MindSpore trainer: Momentum, label-smoothed cross-entropy, AMP levels with loss scaling."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Callable

import mindspore as ms
import numpy as np
from mindspore import nn

from fishbench.backends.mindspore.checkpoint import read_checkpoint, write_checkpoint
from fishbench.backends.mindspore.device import amp_level, configure, execution_mode
from fishbench.backends.mindspore.input.loader import build_batches
from fishbench.backends.mindspore.models import build_model
from fishbench.config import RunConfig
from fishbench.data.decode import BadFiles
from fishbench.data.spec import DataSpec
from fishbench.data.stream import TrainingStream
from fishbench.backends.base import Arrays, Trainer
from fishbench.models.names import torch_state_to_mindspore
from fishbench.run.checkpoints import (check_meta, check_weights_fit, host_rng_states,
                                       own_rng_states, set_host_rng_states)
from fishbench.run.engine import StepLogger
from fishbench.run.metrics import Accuracy
from fishbench.run.schedule import LRSchedule

log = logging.getLogger("fishbench")
DYNAMIC_LOSS_SCALE = 2.0**16  # initial scale, as PyTorch's GradScaler


def parameter_groups(net: nn.Cell, weight_decay: float) -> list[dict[str, Any]]:
    """Weight decay on conv/dense weights only: none on biases and BatchNorm parameters."""
    params = net.trainable_params()
    return [{"params": [p for p in params if p.ndim > 1], "weight_decay": weight_decay},
            {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0},
            {"order_params": params}]


def _parameters(arrays: dict[str, np.ndarray]) -> dict[str, ms.Parameter]:
    return {k: ms.Parameter(ms.Tensor(v), name=k) for k, v in arrays.items()}


class MindSporeTrainer(Trainer):
    def __init__(self, cfg: RunConfig, spec: DataSpec, rank: int = 0, world_size: int = 1,
                 local_rank: int = 0) -> None:
        super().__init__(cfg, spec, rank, world_size)
        configure(cfg)
        self.mode, self.level = execution_mode(cfg), amp_level(cfg)
        self.net = build_model(cfg.model.name, spec.num_classes)
        self.bad_files = BadFiles()
        self.train_batches, self.val_batches = build_batches(
            spec, cfg.batch_size, spec.num_workers, cfg.dataset.bad_images, cfg.seed,
            rank, world_size, self.bad_files)
        self.train_stream = TrainingStream(self.train_batches.stream, cfg.epochs,
                                           self.steps_per_epoch)
        scale_manager, optimizer_scale = self._loss_scaling()
        # One learning-rate Parameter, set from the engine's schedule before every step.
        self.optimizer = nn.Momentum(parameter_groups(self.net, cfg.weight_decay),
                                     learning_rate=cfg.lr_init,
                                     momentum=cfg.momentum, loss_scale=optimizer_scale)
        self.train_net = ms.amp.build_train_network(
            self.net, self.optimizer, nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing),
            level=self.level, loss_scale_manager=scale_manager)
        log.info("MindSpore %s: %s mode, AMP level %s", ms.__version__, self.mode, self.level)

    def settings(self) -> dict[str, Any]:
        return {"decoder": self.spec.decoder, "num_workers": self.spec.num_workers,
                "mode": self.mode, "amp_level": self.level, "precision": self.precision}

    @property
    def images_skipped(self) -> int:
        return len(self.bad_files)

    model_gflops_per_image = None  # not counted: MindSpore has no FLOP counter for a Cell

    @property
    def accelerator(self) -> str | None:
        """For the peak-FLOP/s table: the Ascend 910 family's first chip (the 910B's peak is
        higher, so its MFU is overstated); None elsewhere."""
        return "Ascend910" if self.cfg.device.name == "ascend" else None

    @property
    def precision(self) -> str:
        return "fp32" if self.level == "O0" else "fp16"

    def _loss_scaling(self) -> tuple[ms.LossScaleManager | None, float]:
        """Fixed ``loss_scale`` (unscaled by the optimizer, as the model zoo) or dynamic when it
        is null; none at O0, where nothing runs in fp16."""
        if self.level == "O0":
            return None, 1.0
        if self.cfg.loss_scale is not None:
            scale = float(self.cfg.loss_scale)
            return ms.FixedLossScaleManager(scale, drop_overflow_update=False), scale
        return ms.DynamicLossScaleManager(DYNAMIC_LOSS_SCALE, 2, 2000), 1.0

    @property
    def steps_per_epoch(self) -> int:
        steps = len(self.train_batches)
        return min(steps, self.cfg.max_steps_per_epoch or steps)

    def train_epoch(self, epoch: int, schedule: LRSchedule, first_step: int,
                    logger: StepLogger) -> float:
        self.train_net.set_train(True)
        losses = []
        for i, (images, labels) in enumerate(self.train_stream.epoch(epoch)):
            lr = schedule.lr(first_step + i)
            self.optimizer.learning_rate.set_data(ms.Tensor(lr, ms.float32))
            out = self.train_net(images, ms.from_numpy(labels))
            loss = out[0] if isinstance(out, tuple) else out  # (loss, overflow, scale) if scaled
            losses.append(loss)
            logger.step(epoch, i, first_step + i + 1, lr, loss)
        mean = ms.ops.stack(losses).astype(ms.float32).mean()
        return float(self._all_reduce(mean)) / self.world_size

    @property
    def val_steps(self) -> int:
        return len(self.val_batches)

    def close(self) -> None:
        self.train_stream.close()

    def evaluate(self, on_batch: Callable[[], None] | None = None) -> Accuracy:
        self._use_rank0_batchnorm_statistics()
        self.net.set_train(False)
        acc = Accuracy()
        size = self.cfg.batch_size
        for images, labels in self.val_batches.epoch(0):
            n = len(labels)
            if n < size:  # pad the last batch: one compiled shape in graph mode
                images = ms.ops.pad(images, (0, 0, 0, 0, 0, 0, 0, size - n))
            logits = self.net(images).asnumpy()[:n]
            acc.update(logits.astype(np.float32), labels)
            if on_batch is not None:
                on_batch()
        counts = self._all_reduce(ms.Tensor(acc.counts, ms.float32)).asnumpy()
        return Accuracy.from_counts([round(float(c)) for c in counts])

    def _use_rank0_batchnorm_statistics(self) -> None:
        """Give every rank rank 0's BatchNorm running statistics (what PyTorch DDP's buffer
        broadcast does), so that the ranks evaluate, and rank 0 saves, one model."""
        if self.world_size == 1:
            return
        for param in self.net.get_parameters():
            if param.name.endswith((".moving_mean", ".moving_variance")):
                mine = param.value() if self.rank == 0 else ms.ops.zeros_like(param.value())
                param.set_data(self._all_reduce(mine))

    def _all_reduce(self, values: ms.Tensor) -> ms.Tensor:
        """Sum over the ranks of a data-parallel run (``values`` itself on one process)."""
        return ms.ops.AllReduce()(values) if self.world_size > 1 else values

    def rank_rng_states(self) -> list[dict[str, Any]]:
        mine = {**host_rng_states(), "mindspore": ms.get_rng_state().asnumpy().tolist()}
        if self.world_size == 1:
            return [mine]
        return _all_gather_json(mine)

    def save_checkpoint(self, path: Path, meta: dict[str, Any],
                        rng_states: list[dict[str, Any]]) -> None:
        write_checkpoint(self.train_net, path, meta, rng_states)

    def load_checkpoint(self, path: Path, full: bool) -> dict[str, Any]:
        arrays, meta, rng_states = read_checkpoint(path)
        check_meta(meta, self.cfg, path)
        target = self.train_net if full else self.net
        # The learning rate is the schedule's, set before every step: not taken from a file.
        arrays = {k: v for k, v in arrays.items() if k != "learning_rate"}
        expected = {p.name: tuple(p.shape) for p in target.get_parameters()
                    if p.name != "learning_rate"}
        check_weights_fit(path, self.cfg, expected, {k: v.shape for k, v in arrays.items()},
                          extra_ok=True)  # the optimizer's entries, when loading the model's
        ms.load_param_into_net(target, _parameters(arrays))
        if full:
            rng = own_rng_states(rng_states, self.rank)
            set_host_rng_states(rng)
            ms.set_rng_state(ms.Tensor(np.array(rng["mindspore"], np.uint8)))
        return meta

    def load_weights(self, weights: Arrays) -> None:
        params = torch_state_to_mindspore(weights, self.cfg.model.name)
        ms.load_param_into_net(self.net, _parameters(params), strict_load=True)

    def weights_finite(self) -> bool:
        return all(bool(np.isfinite(p.asnumpy()).all()) for p in self.net.get_parameters())

    def versions(self) -> dict[str, str]:
        return {"mindspore": ms.__version__, "mindspore_mode": self.mode,
                "mindspore_amp_level": self.level}


def _all_gather_json(value: Any) -> list[Any]:
    """``value`` of every rank, indexed by rank. MindSpore has no object gather, and its CPU
    collectives take float tensors only: the JSON text's bytes travel as float32 rows."""
    data = np.frombuffer(json.dumps(value).encode(), np.uint8).astype(np.float32)
    gather = ms.ops.AllGather()
    lengths = gather(ms.Tensor([[len(data)]], ms.float32)).asnumpy()[:, 0].astype(int)
    row = np.zeros((1, lengths.max()), np.float32)
    row[0, : len(data)] = data
    rows = gather(ms.Tensor(row)).asnumpy()
    return [json.loads(bytes(r[:n].astype(np.uint8).tolist())) for r, n in zip(rows, lengths)]

