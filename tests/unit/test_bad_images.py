"""Unreadable images: a decompression bomb is one like any other (named, skipped or stopping the
run as ``dataset.bad_images`` says), and a validation image that cannot be read is counted and
left out of the score, never replaced by another image, in both backends and in ``task=infer``."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fishbench.data.decode import UNREADABLE, BadFiles, SampleSource
from fishbench.data.index import scan_image_folder
from fishbench.data.plan import AugmentPlan
from fishbench.data.transforms import EvalTransform, TrainTransform
from fishbench.errors import DataError
from fishbench.run.metrics import Accuracy
from tests.helpers.image_trees import small_tree, write_images
from tests.helpers.run_if import RunIf

TRAIN = TrainTransform(32, (0.08, 1.0), (3 / 4, 4 / 3), True, (0.4, 0.4, 0.4, 0.1),
                       (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
EVAL = EvalTransform(40, 32, TRAIN.mean, TRAIN.std)


def png_header(width: int, height: int) -> bytes:
    """A PNG that claims ``width`` x ``height`` pixels (no pixel data)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")


def tree_with(tmp_path: Path, name: str, data: bytes) -> tuple:
    folder = tmp_path / "x" / "a"
    write_images(folder, 3)
    (folder / name).write_bytes(data)
    index = scan_image_folder(tmp_path / "x")
    return index, index.files.index(str(folder / name))


def test_a_png_claiming_50000_squared_pixels_is_a_bad_image(tmp_path: Path) -> None:
    index, bomb = tree_with(tmp_path, "bomb.png", png_header(50000, 50000))
    with pytest.raises(DataError, match=r"Cannot read image '.*bomb\.png'.*decompression bomb"):
        SampleSource(index, "stop", AugmentPlan(1, TRAIN), None).read(0, bomb)
    sample = SampleSource(index, "skip", AugmentPlan(1, TRAIN), None).read(0, bomb)
    assert sample.skipped == 1 and sample.file == (bomb + 1) % len(index)


def test_an_image_over_the_pixel_limit_is_a_bad_image(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Between PIL's limit and twice it, PIL only warns: fishbench reads no such file either."""
    index, big = tree_with(tmp_path, "big.png", png_header(60, 60))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 3000)  # 3600 pixels: over it, under twice it
    with pytest.raises(DataError, match=r"Cannot read image '.*big\.png'"):
        SampleSource(index, "stop", None, EVAL).read(0, big)
    assert SampleSource(index, "skip", None, EVAL).read(0, big).label == UNREADABLE


def test_an_unreadable_validation_image_is_counted_not_replaced(tmp_path: Path) -> None:
    index, bad = tree_with(tmp_path, "1_bad.png", b"not a png")
    source = SampleSource(index, "skip", None, EVAL)
    samples = [source.read(0, position) for position in range(len(index))]
    assert [s.label for s in samples].count(UNREADABLE) == 1 and samples[bad].label == UNREADABLE
    assert not samples[bad].pixels.any()  # blank, not a copy of the next image
    bad_files = BadFiles()
    bad_files.add(index, np.array([s.file for s in samples]), np.array([s.skipped for s in samples]),
                  np.array([s.label for s in samples]))
    assert bad_files.paths == {index.files[bad]}


def test_accuracy_scores_readable_images_only() -> None:
    acc = Accuracy()
    logits = np.eye(3, dtype=np.float32)[[0, 1, 2, 0]]
    acc.update(logits, np.array([0, 1, UNREADABLE, 2]))  # 2 of 3 readable images right
    assert acc.total == 3 and acc.percent()[0] == pytest.approx(200 / 3)


def val_tree(tmp_path: Path) -> Path:
    """Two classes of two validation images each, one of them unreadable."""
    root = small_tree(tmp_path / "data", classes=2, n=2)
    (root / "val" / "class0" / "1.png").write_bytes(b"not a png")
    return root


def test_the_pytorch_validation_batches_leave_an_unreadable_image_out(tmp_path: Path) -> None:
    import torch

    from fishbench.backends.pytorch.input.loaders import build_loaders
    from fishbench.config import DatasetConfig, RunConfig
    from fishbench.data.spec import load_data_spec

    spec = load_data_spec(RunConfig(dataset=DatasetConfig(
        name="imagefolder", root=str(val_tree(tmp_path)), image_size=32, resize_size=40,
        num_workers=0, bad_images="skip")))
    bad_files = BadFiles()
    _, val = build_loaders(spec, batch_size=4, bad_images="skip", seed=1, rank=0, world_size=1,
                           device=torch.device("cpu"), memory_format=torch.contiguous_format,
                           bad_files=bad_files)
    (images, labels), = list(val)
    assert labels.tolist() == [0, UNREADABLE, 1, 1]
    assert not torch.equal(images[1], images[2]) and len(bad_files) == 1


@RunIf(mindspore=True)
def test_the_mindspore_validation_batches_leave_an_unreadable_image_out(tmp_path: Path) -> None:
    from fishbench.backends.mindspore.input.loader import build_batches
    from fishbench.config import DatasetConfig, RunConfig
    from fishbench.data.spec import load_data_spec

    spec = load_data_spec(RunConfig(dataset=DatasetConfig(
        name="imagefolder", root=str(val_tree(tmp_path)), image_size=32, resize_size=40,
        num_workers=0, bad_images="skip")))
    bad_files = BadFiles()
    _, val = build_batches(spec, 4, 0, "skip", 1, 0, 1, bad_files)
    (images, labels), = list(val.epoch(0))
    assert labels.tolist() == [0, UNREADABLE, 1, 1]
    assert not np.array_equal(images.asnumpy()[1], images.asnumpy()[2]) and len(bad_files) == 1


@RunIf(onnx=True)
def test_infer_scores_readable_images_and_records_the_skipped(tmp_path: Path) -> None:
    """A "model" of 2 classes: the means of image channels 0 and 1 are its logits."""
    import onnx
    from omegaconf import OmegaConf
    from onnx import TensorProto, helper

    from fishbench.config import validate
    from fishbench.data.spec import load_data_spec
    from fishbench.run.infer import infer_onnx

    starts, ends, axes = (helper.make_tensor(n, TensorProto.INT64, [1], [v])
                          for n, v in (("starts", 0), ("ends", 2), ("axes", 1)))
    graph = helper.make_graph(
        [helper.make_node("GlobalAveragePool", ["image"], ["pooled"]),
         helper.make_node("Flatten", ["pooled"], ["flat"]),
         helper.make_node("Slice", ["flat", "starts", "ends", "axes"], ["logits"])],
        "two_classes",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 32, 32])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 2])],
        initializer=[starts, ends, axes])
    model_file = tmp_path / "two.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), model_file)
    config = validate(OmegaConf.create({
        "task": "infer", "model_file": str(model_file),
        "dataset": {"name": "imagefolder", "root": str(val_tree(tmp_path)), "image_size": 32,
                    "resize_size": 40, "bad_images": "skip"}}))
    result = infer_onnx(config, load_data_spec(config))
    assert (result["images"], result["images_skipped"]) == (3, 1)
    assert result["top1"] == pytest.approx(200 / 3)  # both class1 images right, class0's wrong
