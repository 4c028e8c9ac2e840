"""Everything a backend needs to build its input pipelines, derived once from the config."""

from __future__ import annotations

from dataclasses import dataclass

from fishbench.backends import get_backend
from fishbench.config import RunConfig
from fishbench.data.digits import ensure_digits_tree
from fishbench.data.index import DatasetIndex, build_indices
from fishbench.data.transforms import EvalTransform, TrainTransform, transforms_for
from fishbench.errors import ConfigError, DataError
from fishbench.run.cores import cpu_share

IMAGENET_CLASSES = 1000


@dataclass(frozen=True)
class DataSpec:
    """Train/val indices (``None`` for synthetic data), class count and transform numbers."""

    name: str
    train: DatasetIndex | None
    val: DatasetIndex | None
    num_classes: int
    train_transform: TrainTransform
    eval_transform: EvalTransform
    synthetic_sizes: tuple[int, int] = (0, 0)
    decoder: str = "cpu"  # the engine: cpu or gpu
    num_workers: int = 0  # loader worker processes of each training process
    gpu_decode_share: float = 0.0  # the gpu engine's share of files decoded by nvjpeg

    @property
    def train_size(self) -> int:
        return len(self.train) if self.train is not None else self.synthetic_sizes[0]

    @property
    def val_size(self) -> int:
        return len(self.val) if self.val is not None else self.synthetic_sizes[1]


def load_data_spec(cfg: RunConfig) -> DataSpec:
    """Index the configured dataset and check its class count against the model's."""
    ds = cfg.dataset
    engine, workers = decoder_engine(cfg), worker_count(ds.num_workers, cfg.world.nproc_per_node)
    train_tf, eval_tf = transforms_for(ds)
    share = float(ds.gpu_decode_share)
    if ds.name == "synthetic":
        if ds.num_classes is None:
            raise DataError("dataset=synthetic needs dataset.num_classes (e.g. 1000).")
        spec = DataSpec(ds.name, None, None, ds.num_classes, train_tf, eval_tf,
                        (ds.train_samples, ds.val_samples), decoder=engine, num_workers=workers,
                        gpu_decode_share=share)
    else:
        root = ensure_digits_tree(ds.root) if ds.name == "digits" else ds.root
        train, val = build_indices(root)
        found = len(train.classes)
        if found < 2:
            raise DataError(
                f"'{root}' has {found} class folder(s) under its train split: a classifier needs "
                "at least two (every prediction of one class is right). Add class folders, or "
                "point dataset.root at the tree that has them."
            )
        if ds.name == "imagenet" and found != IMAGENET_CLASSES:
            raise DataError(
                f"dataset=imagenet expects {IMAGENET_CLASSES} class folders, but '{ds.root}' has "
                f"{found}. For a tree with another number of classes use dataset=imagefolder "
                f"dataset.root={ds.root}."
            )
        if ds.num_classes is not None and ds.num_classes != found:
            raise DataError(
                f"dataset.num_classes is {ds.num_classes}, but '{ds.root}' has {found} class "
                f"folders. Set dataset.num_classes={found} (or null to take it from the tree)."
            )
        spec = DataSpec(ds.name, train, val, found, train_tf, eval_tf, decoder=engine,
                        num_workers=workers, gpu_decode_share=share)
    if cfg.model.num_classes is not None and cfg.model.num_classes != spec.num_classes:
        raise DataError(
            f"model.num_classes is {cfg.model.num_classes}, but dataset={ds.name} has "
            f"{spec.num_classes} classes. Set model.num_classes={spec.num_classes} or choose "
            "matching data."
        )
    return spec


def decoder_engine(cfg: RunConfig) -> str:
    """``dataset.decoder`` resolved: ``auto`` is the backend's first choice for the device."""
    choice = cfg.dataset.decoder
    available = get_backend(cfg.backend.name).decoders(cfg)
    if choice == "auto":
        return available[0]
    if choice not in available:
        raise ConfigError(
            f"dataset.decoder={choice} is not available with backend={cfg.backend.name} "
            f"device={cfg.device.name} (available: {', '.join(available)}; the gpu decoder needs "
            f"backend=pytorch with device=gpu, a CUDA GPU). Set dataset.decoder=cpu (or auto)."
        )
    return choice


def worker_count(setting: int | str, processes_per_node: int) -> int:
    """``dataset.num_workers``: a number as given; ``auto`` is this process's share of the
    cores (:func:`fishbench.run.cores.cpu_share`) minus one for the training process itself
    (0, decoding in the training process, where that leaves none)."""
    if setting != "auto":
        return int(setting)
    return max(cpu_share(processes_per_node) - 1, 0)
