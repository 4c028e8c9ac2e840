"""Structured-config schemas: types, defaults and value checks of every run.

Hydra composes the YAML groups in ``conf/``; :func:`validate` merges the result onto these
dataclasses, so a wrong type or an impossible value stops the run before any work with a message
naming the key.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Optional

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from fishbench.backends import backend_names, get_backend
from fishbench.backends.base import BackendSection
from fishbench.config.checks import check, check_choice
from fishbench.errors import ConfigError
from fishbench.models.registry import list_models

DEVICES = ("cpu", "gpu", "ascend")
DATASETS = ("digits", "imagenet", "imagefolder", "synthetic")
SCHEDULES = ("cosine_annealing", "cosine", "step")
TASKS = ("train", "eval", "export", "infer")


@dataclass
class ModelConfig:
    name: str = "fishnet99"
    num_classes: Optional[int] = None  # None: taken from the dataset


@dataclass
class DeviceConfig:
    name: str = "cpu"
    id: int = 0
    cpu_threads: Any = "auto"  # compute threads of a CPU process: a number, or auto (its share)


@dataclass
class WorldConfig:
    nproc_per_node: int = 1
    nnodes: int = 1
    node_rank: int = 0
    master_addr: str = "127.0.0.1"
    master_port: Optional[int] = None
    timeout_s: int = 300

    @property
    def size(self) -> int:
        return self.nproc_per_node * self.nnodes


@dataclass
class DatasetConfig:
    name: str = "digits"
    root: Optional[str] = None
    num_classes: Optional[int] = None
    image_size: int = 224
    resize_size: int = 256
    crop_scale: list[float] = field(default_factory=lambda: [0.08, 1.0])
    crop_ratio: list[float] = field(default_factory=lambda: [0.75, 4 / 3])
    hflip: bool = True
    color_jitter: list[float] = field(default_factory=lambda: [0.4, 0.4, 0.4, 0.1])
    mean: list[float] = field(default_factory=lambda: [0.485, 0.456, 0.406])
    std: list[float] = field(default_factory=lambda: [0.229, 0.224, 0.225])
    num_workers: Any = "auto"  # a whole number, or auto (see fishbench.data.spec.worker_count)
    decoder: str = "auto"  # auto | cpu | gpu: where images are decoded and cropped
    gpu_decode_share: float = 0.6  # gpu engine: share of the files decoded by nvjpeg, 0..1
    bad_images: str = "skip"
    train_samples: int = 2048  # synthetic
    val_samples: int = 512  # synthetic


@dataclass
class ScheduleConfig:
    name: str = "cosine_annealing"
    step_epochs: int = 30
    gamma: float = 0.1


@dataclass
class RunConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    backend: BackendSection = field(default_factory=BackendSection)  # the backend's own schema
    device: DeviceConfig = field(default_factory=DeviceConfig)
    world: WorldConfig = field(default_factory=WorldConfig)
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    task: str = "train"
    name: str = "fishnet99"
    epochs: int = 4
    batch_size: int = 64
    lr_init: float = 0.05
    T_max: int = 4
    eta_min: float = 0.0
    warmup_epochs: int = 0
    momentum: float = 0.9
    weight_decay: float = 1e-4
    label_smoothing: float = 0.1
    amp: bool = False
    loss_scale: Optional[float] = None
    seed: int = 1
    save_checkpoint_epochs: int = 2
    keep_checkpoint_max: int = 25
    ckpt_path: Optional[str] = None
    resume: bool = False
    model_file: Optional[str] = None
    log_every_n_steps: int = 10
    progress: Any = "auto"  # the live progress display: auto (on a terminal), true or false
    max_steps_per_epoch: Optional[int] = None


def _check_finite(node: Any, key: str = "") -> None:
    """Refuse NaN and infinite numbers anywhere in the config (they pass every range check)."""
    if dataclasses.is_dataclass(node):
        for f in dataclasses.fields(node):
            _check_finite(getattr(node, f.name), f"{key}.{f.name}" if key else f.name)
    elif isinstance(node, (list, tuple)):
        for value in node:
            _check_finite(value, key)
    elif isinstance(node, float):
        check(math.isfinite(node), key, node, "a finite number")


def _check_ranges(c: RunConfig) -> None:
    _check_finite(c)
    check_choice("task", c.task, TASKS)
    check_choice("model.name", c.model.name, list_models())
    check_choice("device.name", c.device.name, DEVICES)
    check_choice("dataset.name", c.dataset.name, DATASETS)
    check_choice("schedule.name", c.schedule.name, SCHEDULES)
    check_choice("dataset.bad_images", c.dataset.bad_images, ("skip", "stop"))
    check_choice("dataset.decoder", c.dataset.decoder, ("auto", "cpu", "gpu"))
    for key, value, least in (("dataset.num_workers", c.dataset.num_workers, 0),
                              ("device.cpu_threads", c.device.cpu_threads, 1)):
        whole = isinstance(value, int) and not isinstance(value, bool)
        check(value == "auto" or (whole and value >= least), key, value,
              f"auto or a whole number >= {least}")
    check(0 <= c.dataset.gpu_decode_share <= 1, "dataset.gpu_decode_share",
           c.dataset.gpu_decode_share, "a number from 0 to 1")
    c.backend.check()
    for key, value in (("epochs", c.epochs), ("batch_size", c.batch_size), ("T_max", c.T_max),
                       ("save_checkpoint_epochs", c.save_checkpoint_epochs),
                       ("keep_checkpoint_max", c.keep_checkpoint_max),
                       ("log_every_n_steps", c.log_every_n_steps),
                       ("schedule.step_epochs", c.schedule.step_epochs),
                       ("world.nproc_per_node", c.world.nproc_per_node),
                       ("world.nnodes", c.world.nnodes), ("world.timeout_s", c.world.timeout_s)):
        check(value >= 1, key, value, "a whole number >= 1")
    check(c.progress == "auto" or isinstance(c.progress, bool), "progress", c.progress,
          "auto (bars when the output is a terminal), true or false")
    check(c.lr_init > 0, "lr_init", c.lr_init, "a positive number")
    check(0 <= c.eta_min <= c.lr_init, "eta_min", c.eta_min, "between 0 and lr_init")
    check(0 <= c.warmup_epochs < c.epochs, "warmup_epochs", c.warmup_epochs,
           "between 0 and epochs - 1")
    check(0 <= c.momentum < 1, "momentum", c.momentum, "in [0, 1)")
    check(c.weight_decay >= 0, "weight_decay", c.weight_decay, "0 or more")
    check(0 <= c.label_smoothing < 1, "label_smoothing", c.label_smoothing, "in [0, 1)")
    check(0 < c.schedule.gamma <= 1, "schedule.gamma", c.schedule.gamma, "in (0, 1]")
    check(c.loss_scale is None or c.loss_scale > 0, "loss_scale", c.loss_scale,
           "a positive number or null")
    check(c.max_steps_per_epoch is None or c.max_steps_per_epoch >= 1, "max_steps_per_epoch",
           c.max_steps_per_epoch, "a whole number >= 1 or null")
    check(0 <= c.world.node_rank < c.world.nnodes, "world.node_rank", c.world.node_rank,
           "between 0 and world.nnodes - 1")
    for key, classes in (("dataset.num_classes", c.dataset.num_classes),  # the one a user sets
                         ("model.num_classes", c.model.num_classes)):
        check(classes is None or classes >= 2, key, classes, "a whole number >= 2 or null")
    size = c.dataset.image_size
    check(size >= 32 and size % 32 == 0, "dataset.image_size", size,
           "a multiple of 32 (FishNet99 and ResNet50 down-sample by 32)")
    check(c.dataset.resize_size >= size, "dataset.resize_size", c.dataset.resize_size,
           f"at least dataset.image_size ({size})")
    check(len(c.dataset.mean) == 3 and len(c.dataset.std) == 3 and min(c.dataset.std) > 0,
           "dataset.mean/dataset.std", (c.dataset.mean, c.dataset.std),
           "three numbers each, std positive")
    lo, hi = c.dataset.crop_scale
    check(0 < lo <= hi <= 1, "dataset.crop_scale", c.dataset.crop_scale, "[lo, hi] with 0 < lo <= hi <= 1")
    check(len(c.dataset.color_jitter) == 4, "dataset.color_jitter", c.dataset.color_jitter,
           "four numbers: brightness, contrast, saturation, hue")
    if c.dataset.name in ("imagenet", "imagefolder"):
        check(c.dataset.root not in (None, "", "???"), "dataset.root", c.dataset.root,
               f"the folder of the image tree for dataset={c.dataset.name} (with train/ and val/)")
    if c.task == "infer":
        check(c.model_file is not None, "model_file", c.model_file,
               "the path of an exported .onnx file for task=infer")


def validate(cfg: DictConfig) -> RunConfig:
    """Resolve ``cfg`` and check every key's type and range; return the typed config."""
    name = OmegaConf.select(cfg, "backend.name", default="pytorch",
                            throw_on_resolution_failure=False)
    check_choice("backend.name", name, backend_names())
    try:
        schema = OmegaConf.structured(RunConfig)
        schema.backend = OmegaConf.structured(get_backend(name).config_section)
        merged = OmegaConf.merge(schema, cfg)
        run = OmegaConf.to_object(merged)
    except OmegaConfBaseException as err:
        key = getattr(err, "full_key", None) or "?"
        raise ConfigError(
            f"Config key '{key}' is invalid: {str(getattr(err, 'msg', err)).splitlines()[0]}. "
            "Check the value's type on the command line or in your config file "
            "(`python run.py --cfg job` prints the composed config)."
        ) from None
    assert isinstance(run, RunConfig)
    _check_ranges(run)
    return run
