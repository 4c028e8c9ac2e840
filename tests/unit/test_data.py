"""The shared dataset index, layouts, image decoding and bad-image policy, and the digits tree."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fishbench.config import DatasetConfig, ModelConfig, RunConfig
from fishbench.data.digits import ensure_digits_tree
from fishbench.data.decode import UNREADABLE, SampleSource
from fishbench.data.index import build_indices, scan_image_folder
from fishbench.data.spec import load_data_spec
from fishbench.data.synthetic import synthetic_sample, synthetic_splits
from fishbench.data.transforms import EvalTransform
from fishbench.errors import DataError
from tests.helpers.image_trees import imagenet_tree, small_tree, write_images
from tests.helpers.run_if import RunIf

def run_config(name: str, root: Path, classes: int | None, **model) -> RunConfig:
    return RunConfig(dataset=DatasetConfig(name=name, root=str(root), num_classes=classes),
                     model=ModelConfig(name="fishnet99", num_classes=model.get("num_classes")))


def test_digits_tree_is_written_once_and_indexed(tmp_path: Path) -> None:
    root = ensure_digits_tree(tmp_path / "digits")
    train, val = build_indices(root)
    assert (len(train), len(val)) == (1437, 360)
    assert train.classes == tuple(str(d) for d in range(10))
    assert np.bincount(val.labels).min() >= 25  # every digit is in val
    stamp = (root / "val" / "0" / "0000.png").stat().st_mtime_ns
    ensure_digits_tree(root)
    assert (root / "val" / "0" / "0000.png").stat().st_mtime_ns == stamp
    image = Image.open(root / "val" / "0" / "0000.png")
    assert image.size == (8, 8) and image.mode == "L"


@RunIf(imagenet_sample=True)
@pytest.mark.parametrize("train,val", [("train", "val"), ("ILSVRC2012_train", "ILSVRC2012_val")])
def test_imagenet_layouts_give_1000_wnid_classes_in_sorted_order(tmp_path, train, val) -> None:
    root = imagenet_tree(tmp_path, train, val)
    spec = load_data_spec(run_config("imagenet", root, 1000, num_classes=1000))
    assert spec.num_classes == 1000 and len(spec.train) == len(spec.val) == 1000
    assert spec.train.classes[0] == "n01440764" and list(spec.train.classes) == sorted(spec.train.classes)
    assert spec.val.labels.tolist() == list(range(1000))


def test_imagenet_with_another_class_count_points_to_imagefolder(tmp_path: Path) -> None:
    root = small_tree(tmp_path)
    with pytest.raises(DataError, match="dataset=imagefolder"):
        load_data_spec(run_config("imagenet", root, 1000))
    spec = load_data_spec(run_config("imagefolder", root, None))
    assert spec.num_classes == 3 and len(spec.train) == 12


def test_a_tree_of_one_class_is_refused_naming_it(tmp_path: Path) -> None:
    root = small_tree(tmp_path, classes=1)
    with pytest.raises(DataError, match=f"'{root}' has 1 class folder"):
        load_data_spec(run_config("imagefolder", root, None))


def test_model_class_count_mismatch(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="model.num_classes is 10.*3 classes"):
        load_data_spec(run_config("imagefolder", small_tree(tmp_path), None, num_classes=10))


@pytest.mark.parametrize("make,match", [
    (lambda root: None, "does not exist"),
    (lambda root: root.mkdir(), "no train folder"),
    (lambda root: (root / "train").mkdir(parents=True) or (root / "val").mkdir(), "no image files"),
])
def test_missing_or_empty_root_names_the_layouts(tmp_path: Path, make, match: str) -> None:
    root = tmp_path / "data"
    make(root)
    with pytest.raises(DataError, match=match) as err:
        build_indices(root)
    assert "Accepted layouts" in str(err.value)


EVAL = EvalTransform(resize=40, size=32, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))


def test_grayscale_and_cmyk_images_read_as_rgb(tmp_path: Path) -> None:
    write_images(tmp_path / "x" / "gray", 1, mode="L")
    write_images(tmp_path / "x" / "cmyk", 1, mode="CMYK")
    index = scan_image_folder(tmp_path / "x")
    source = SampleSource(index, "stop", None, EVAL)
    for i in range(2):
        sample = source.read(0, i)
        assert sample.pixels.shape == (32, 32, 3) and sample.skipped == 0
    gray = source.read(0, index.classes.index("gray")).pixels  # one file per class
    assert (gray == gray[..., :1]).all()


def test_corrupt_images_are_skipped_and_counted_or_stop(tmp_path: Path) -> None:
    write_images(tmp_path / "x" / "a", 3)
    (tmp_path / "x" / "a" / "1.png").write_bytes(b"not a png")
    index = scan_image_folder(tmp_path / "x")
    sample = SampleSource(index, "skip", None, EVAL).read(0, 1)
    assert (sample.file, sample.label, sample.skipped) == (1, UNREADABLE, 0)
    assert sample.pixels.shape == (32, 32, 3) and not sample.pixels.any()
    with pytest.raises(DataError, match="1.png.*dataset.bad_images=skip"):
        SampleSource(index, "stop", None, EVAL).read(0, 1)


def test_shards_are_disjoint_equal_and_reshuffled_each_epoch(tmp_path: Path) -> None:
    index = scan_image_folder(small_tree(tmp_path, classes=1, n=10) / "train")
    shards = [index.epoch_order(0, seed=3, rank=r, world_size=3) for r in range(3)]
    assert [len(s) for s in shards] == [3, 3, 3]
    assert len(set(np.concatenate(shards).tolist())) == 9
    assert not np.array_equal(index.epoch_order(1, 3, 0, 3), shards[0])
    assert np.array_equal(index.epoch_order(0, 3, 0, 3), shards[0])
    evals = [index.epoch_order(0, 3, r, 3, shuffle=False) for r in range(3)]
    assert sorted(np.concatenate(evals).tolist()) == list(range(10))


def test_synthetic_splits_replay_a_pool_of_the_shared_samples_per_rank() -> None:
    spec = load_data_spec(RunConfig(dataset=DatasetConfig(
        name="synthetic", num_classes=5, image_size=8, train_samples=60, val_samples=9)))
    train, val = synthetic_splits(spec, batch_size=4, seed=3, world_size=2)
    # 30 samples per rank: 7 batches from a pool of 4; 4 val samples: one batch, its own seed
    assert (len(train), len(train.pool), len(val), len(val.pool)) == (7, 4, 1, 1)
    images, labels = train.pool[2]
    want = [synthetic_sample(8 + i, 8, 5, seed=3) for i in range(4)]
    assert images.shape == (4, 3, 8, 8) and images.dtype == np.float32
    assert np.array_equal(images, np.stack([w[0] for w in want]))
    assert labels.tolist() == [w[1] for w in want] and labels.dtype == np.int64
    assert np.array_equal(val.pool[0][0][0], synthetic_sample(0, 8, 5, seed=4)[0])
    assert list(train.replay("abcd")) == list("abcdabc")  # a backend's pool, taken in turn
