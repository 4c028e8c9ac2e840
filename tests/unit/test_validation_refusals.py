"""Inputs refused with a message before they mislead a run: hidden files in a tree, an empty class
folder, an exported model of another class count, odd files for ``fishbench compare``, and a
damaged ``multirun.yaml`` for a sweep's resume."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO
from tests.helpers.image_trees import small_tree
from tests.helpers.run_if import RunIf


def test_hidden_files_are_not_indexed(tmp_path: Path) -> None:
    from fishbench.data.index import build_indices

    root = small_tree(tmp_path, classes=2, n=2)
    (root / "train" / "class0" / "._0.png").write_bytes(b"\0\5\26\7 AppleDouble")
    (root / "train" / ".thumbnails").mkdir()
    (root / "train" / ".thumbnails" / "a.png").write_bytes(b"x")
    train, val = build_indices(root)
    assert train.classes == ("class0", "class1") and len(train) == 4
    assert not any(Path(f).name.startswith(".") for f in train.files)


def test_an_empty_train_class_folder_stops_naming_it(tmp_path: Path) -> None:
    from fishbench.data.index import build_indices
    from fishbench.errors import DataError

    root = small_tree(tmp_path, classes=2, n=2)
    (root / "train" / "class2").mkdir()
    (root / "train" / "class2" / "notes.txt").write_text("no images")
    with pytest.raises(DataError, match=r"class folder '.*train/class2' holds no images"):
        build_indices(root)


@RunIf(onnx=True)
def test_infer_with_a_model_of_other_classes_stops(tmp_path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    from fishbench.config import validate
    from fishbench.data.spec import load_data_spec
    from fishbench.errors import ConfigError
    from fishbench.run.infer import infer_onnx
    from omegaconf import OmegaConf

    # A "model" of 3 classes: the mean of each of the 3 image channels is a logit.
    graph = helper.make_graph(
        [helper.make_node("GlobalAveragePool", ["image"], ["pooled"]),
         helper.make_node("Flatten", ["pooled"], ["logits"])],
        "three_classes",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 32, 32])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 3])])
    model_file = tmp_path / "three.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), model_file)
    config = validate(OmegaConf.create({
        "task": "infer", "model_file": str(model_file),
        "dataset": {"name": "synthetic", "num_classes": 4, "image_size": 32, "resize_size": 32,
                    "train_samples": 4, "val_samples": 4}}))
    with pytest.raises(ConfigError, match="predicts 3 classes, but the dataset.*has 4"):
        infer_onnx(config, load_data_spec(config))


def test_compare_reads_a_metrics_file_that_is_not_an_object(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture) -> None:
    from fishbench.cli import main

    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "metrics.json").write_text("[1, 2]")
    assert main(["compare", str(tmp_path / "run")]) == 0
    assert "unreadable" in capsys.readouterr().out


def test_compare_does_not_create_missing_folders(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture) -> None:
    from fishbench.cli import main

    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "metrics.json").write_text('{"status": "completed", "top1": 50.0}')
    target = tmp_path / "missing" / "dir" / "x.csv"
    assert main(["compare", str(tmp_path / "run"), "--csv", str(target)]) == 2
    assert f"folder '{target.parent}' does not exist" in capsys.readouterr().err
    assert not (tmp_path / "missing").exists()


DAMAGED = {"not YAML": "hydra: [unclosed\n", "not a mapping": "- a\n- b\n",
           "cut short": "hydra:\n  callbacks:\n    sweep_summary: {}\n"}


@pytest.mark.parametrize("content", DAMAGED.values(), ids=DAMAGED.keys())
def test_fishbench_resume_refuses_a_damaged_multirun_yaml(tmp_path: Path, content: str,
                                                          capsys: pytest.CaptureFixture) -> None:
    from fishbench.cli import main

    (tmp_path / "multirun.yaml").write_text(content)
    assert main(["resume", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'multirun.yaml'} is damaged" in err and "Traceback" not in err


def test_the_long_form_refuses_a_damaged_multirun_yaml(tmp_path: Path) -> None:
    (tmp_path / "multirun.yaml").write_text(DAMAGED["not YAML"])
    proc = subprocess.run([sys.executable, str(REPO / "run.py"), "-m", "seed=1,2",
                           f"hydra.sweep.dir={tmp_path}", "hydra.sweeper.resume=true"],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert f"{tmp_path / 'multirun.yaml'} is damaged" in proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["multirun.yaml"]
