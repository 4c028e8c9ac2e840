"""``task=infer``: evaluate an exported ONNX file with onnxruntime on the validation split.

Framework-free: the backends' eval crops (the shared PIL engine), normalised in numpy with the
shared eval transform numbers, onnxruntime runs the model.
``ms_per_image`` is the model's run time per image, the first batch excluded, as the reference's
Ascend-310 inference figure.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np
from fishbench.config import RunConfig
from fishbench.data.decode import UNREADABLE, SampleSource
from fishbench.data.spec import DataSpec
from fishbench.data.synthetic import synthetic_sample
from fishbench.data.transforms import EvalTransform
from fishbench.errors import ConfigError, FishbenchError
from fishbench.run.metrics import Accuracy

log = logging.getLogger("fishbench")


def normalise(pixels: np.ndarray, t: EvalTransform) -> np.ndarray:
    """An eval crop (uint8 HWC) normalised with the eval transform's mean and std: float32 CHW."""
    scaled = pixels.astype(np.float32) / 255.0
    return ((scaled - np.asarray(t.mean, np.float32)) / np.asarray(t.std, np.float32)).transpose(2, 0, 1)


def val_samples(spec: DataSpec, bad_images: str, seed: int) -> Iterator[tuple[np.ndarray, int]]:
    """Every validation sample once, in file order, as (CHW float32, label); the crops are the
    backends' eval crops (:class:`fishbench.data.decode.SampleSource`, no plan), an unreadable
    file's label :data:`~fishbench.data.decode.UNREADABLE` (not scored)."""
    if spec.val is None:
        for i in range(spec.synthetic_sizes[1]):
            yield synthetic_sample(i, spec.eval_transform.size, spec.num_classes, seed + 1)
        return
    source = SampleSource(spec.val, bad_images, None, spec.eval_transform)
    for position in range(len(spec.val)):
        sample = source.read(0, position)
        yield normalise(sample.pixels, spec.eval_transform), sample.label


def _session(model_file: Path, device: str):
    try:
        import onnxruntime as ort  # noqa: PLC0415  (an optional extra)
    except ImportError:
        raise FishbenchError("task=infer needs onnxruntime: `pip install -e .[onnx]`.") from None
    providers = ["CPUExecutionProvider"]
    if device == "gpu" and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    try:
        return ort.InferenceSession(str(model_file), providers=providers)
    except Exception as err:  # onnxruntime raises its own classes for a bad file
        raise ConfigError(f"model_file '{model_file}' is not a readable ONNX model ({err}). "
                          "Pass a file written by task=export.") from None


def infer_onnx(config: RunConfig, spec: DataSpec) -> dict[str, Any]:
    """Top-1/top-5 and ms per image of ``config.model_file`` on the validation split."""
    model_file = Path(str(config.model_file)).expanduser()
    if not model_file.is_file():
        raise ConfigError(f"model_file '{model_file}' does not exist. Pass the .onnx file that "
                          "task=export wrote into its run dir (e.g. <run dir>/fishnet99.onnx).")
    session = _session(model_file, config.device.name)
    node = session.get_inputs()[0]
    batch = node.shape[0] if isinstance(node.shape[0], int) else config.batch_size
    size = spec.eval_transform.size
    if list(node.shape[2:]) != [size, size]:
        raise ConfigError(f"model_file '{model_file}' takes {node.shape[2:]} images, but "
                          f"dataset.image_size is {size}. Set dataset.image_size (and "
                          "dataset.resize_size) to the export's size.")
    classes = session.get_outputs()[0].shape[-1]
    if isinstance(classes, int) and classes != spec.num_classes:
        raise ConfigError(f"model_file '{model_file}' predicts {classes} classes, but the "
                          f"dataset ({config.dataset.name}) has {spec.num_classes}. Infer on the "
                          "dataset the model was trained on, or export a model of this one.")
    acc, seconds, timed, skipped = Accuracy(), 0.0, 0, 0
    samples = val_samples(spec, config.dataset.bad_images, config.seed)
    for first in range(0, spec.val_size, batch):
        pairs = [next(samples) for _ in range(min(batch, spec.val_size - first))]
        images = np.zeros((batch, 3, size, size), np.float32)  # a fixed batch is padded
        images[: len(pairs)] = np.stack([p[0] for p in pairs])
        started = time.perf_counter()
        logits = session.run(None, {node.name: images})[0][: len(pairs)]
        if first:  # the first batch warms the session up
            seconds += time.perf_counter() - started
            timed += len(pairs)
        labels = np.array([p[1] for p in pairs])
        acc.update(logits, labels)
        skipped += int((labels == UNREADABLE).sum())
    top1, top5 = acc.percent()[:2]
    ms_per_image = 1000.0 * seconds / timed if timed else float("nan")
    log.info("infer of %s: top1 %.2f  top5 %.2f  %.2f ms/image (%d images, batch %d)",
             model_file, top1, top5, ms_per_image, acc.total, batch)
    return {"top1": top1, "top5": top5, "ms_per_image": ms_per_image, "images": acc.total,
            "images_skipped": skipped, "model_file": str(model_file), "infer_batch": batch}
