"""The MindSpore backend for real on the CPU: training on digits and on JPEGs, resume,
cross-backend checkpoints (top1/top5 of one checkpoint in both), export + onnxruntime inference,
and the clear errors for missing GPU/Ascend runtimes.

Runs use 32x32 digits with a 60-image val split (digits_small_val) so that each evaluation is
short.
"""

from __future__ import annotations

import math
import shutil
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pytest

from conftest import SMALL_VAL_PER_CLASS, metrics_of, run_cli
from fishbench.run.records import read_history
from tests.helpers.image_trees import jpeg_tree
from tests.helpers.run_if import RunIf

pytestmark = [RunIf(mindspore=True), pytest.mark.slow]
RUN = ["epochs=1", "batch_size=16", "max_steps_per_epoch=2", "log_every_n_steps=1",
       "warmup_epochs=0"]


def cli(root: Path, run_dir: Path, *args: str, check: bool = True):
    return run_cli([f"dataset.root={root}", f"hydra.run.dir={run_dir}", *args], check=check)


@pytest.fixture(scope="module")
def ms_run(tmp_path_factory: pytest.TempPathFactory, digits_small_val: Path) -> Path:
    """FishNet99 trained by MindSpore (graph mode, the default) for 2 steps."""
    run_dir = tmp_path_factory.mktemp("ms_run")
    cli(digits_small_val, run_dir, "backend=mindspore", *RUN)
    return run_dir


@pytest.fixture(scope="module")
def torch_run(tmp_path_factory: pytest.TempPathFactory, digits_small_val: Path) -> Path:
    """ResNet50 trained by PyTorch for 3 steps (lr low enough to keep predictions varied)."""
    run_dir = tmp_path_factory.mktemp("torch_run")
    cli(digits_small_val, run_dir, "backend=pytorch", "model=resnet50", "lr_init=0.002", *RUN,
        "max_steps_per_epoch=3")
    return run_dir


def test_mindspore_trains_and_evaluates_digits(ms_run: Path) -> None:
    m = metrics_of(ms_run)
    assert m["status"] == "completed" and m["backend"] == "mindspore"
    assert m["versions"]["mindspore"] == version("mindspore")
    assert m["versions"]["mindspore_mode"] == "graph"
    assert (m["epochs"], m["steps"], m["images_skipped"]) == (1, 2, 0)
    assert 0 <= m["top1"] <= m["top5"] <= 100 and np.isfinite(m["loss"])
    val = 10 * SMALL_VAL_PER_CLASS
    assert m["top1"] * val / 100 == pytest.approx(round(m["top1"] * val / 100))  # of val images
    [row] = read_history(ms_run)
    assert row["epoch"] == 1 and row["top1"] == pytest.approx(m["top1"])
    assert row["lr"] == pytest.approx(0.05) and row["train_loss"] == pytest.approx(m["loss"])
    names = sorted(p.name for p in (ms_run / "checkpoints").iterdir())
    assert names == ["best.ckpt", "epoch_0001.ckpt", "last.ckpt"]
    assert any((ms_run / "tensorboard").iterdir())


def test_resume_continues_the_step_count(ms_run: Path, digits_small_val: Path,
                                         tmp_path: Path) -> None:
    run_dir = tmp_path / "resumed"
    shutil.copytree(ms_run, run_dir)
    cli(digits_small_val, run_dir, "backend=mindspore", *RUN, "epochs=2", "resume=true",
        "backend.mode=pynative")  # the other execution mode, on the same checkpoint
    m = metrics_of(run_dir)
    assert m["status"] == "completed" and (m["epochs"], m["steps"]) == (2, 4)
    rows = read_history(run_dir)
    assert [r["epoch"] for r in rows] == [1, 2]
    assert rows[0] == read_history(ms_run)[0]
    assert (run_dir / "checkpoints" / "epoch_0002.ckpt").is_file()


def test_mindspore_evaluates_a_pytorch_checkpoint_to_the_same_top1(
        torch_run: Path, digits_small_val: Path, tmp_path: Path) -> None:
    trained = metrics_of(torch_run)
    cli(digits_small_val, tmp_path, "backend=mindspore", "model=resnet50", "task=eval",
        "batch_size=16", f"ckpt_path={torch_run}")
    m = metrics_of(tmp_path)
    assert m["status"] == "completed" and m["ckpt_path"] == str(torch_run)
    assert 0 < trained["top1"] < 100 and trained["top5"] < 100  # not a degenerate model
    assert (m["top1"], m["top5"]) == pytest.approx((trained["top1"], trained["top5"]))


def test_pytorch_evaluates_a_mindspore_checkpoint_to_the_same_top1(
        ms_run: Path, digits_small_val: Path, tmp_path: Path) -> None:
    trained = metrics_of(ms_run)
    cli(digits_small_val, tmp_path, "backend=pytorch", "task=eval", "batch_size=16",
        f"ckpt_path={ms_run / 'checkpoints' / 'last.ckpt'}")
    m = metrics_of(tmp_path)
    assert (m["top1"], m["top5"]) == pytest.approx((trained["top1"], trained["top5"]))


@RunIf(onnx=True)
@pytest.mark.parametrize("backend", ["mindspore", "pytorch"])
def test_export_then_onnxruntime_infer_matches_the_framework(
        backend: str, request: pytest.FixtureRequest, digits_small_val: Path,
        tmp_path: Path) -> None:
    trained_dir = request.getfixturevalue("ms_run" if backend == "mindspore" else "torch_run")
    trained = metrics_of(trained_dir)
    export_dir, infer_dir = tmp_path / "export", tmp_path / "infer"
    proc = cli(digits_small_val, export_dir, f"backend={backend}", f"model={trained['model']}",
               "task=export", f"ckpt_path={trained_dir}")
    if backend == "pytorch":  # the ONNX passes' INFO lines go to the run's log, not the terminal
        assert "onnx_ir" not in proc.stdout and "onnx_ir" in (export_dir / "run.log").read_text()
    exported = metrics_of(export_dir)["exported"]
    assert set(exported) == ({"mindir", "onnx"} if backend == "mindspore" else {"onnx"})
    assert all(Path(path).is_file() for path in exported.values())
    cli(digits_small_val, infer_dir, "task=infer", f"model={trained['model']}",
        f"model_file={exported['onnx']}")
    m = metrics_of(infer_dir)
    assert m["status"] == "completed" and m["images"] == 10 * SMALL_VAL_PER_CLASS
    assert m["ms_per_image"] > 0
    assert (m["top1"], m["top5"]) == pytest.approx((trained["top1"], trained["top5"]))


@pytest.mark.parametrize("device,phrases", [
    ("gpu", ("device=gpu with backend=mindspore", "CUDA 11", "cuDNN 8", "missing")),
    ("ascend", ("device=ascend with backend=mindspore", "CANN", "set_env.sh")),
])
def test_missing_device_runtime_stops_before_any_work(device: str, phrases: tuple[str, ...],
                                                      tmp_path: Path) -> None:
    proc = run_cli(["backend=mindspore", f"device={device}", f"hydra.run.dir={tmp_path}"],
                   check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 2 and "Traceback" not in output, output
    for phrase in phrases:
        assert phrase in output
    m = metrics_of(tmp_path)
    assert m["status"] == "failed" and not (tmp_path / "checkpoints").exists()


def test_mindspore_trains_on_jpegs_with_colour_jitter(tmp_path: Path, fishbench_cache) -> None:
    root = jpeg_tree(tmp_path / "data", classes=2, per_class=4)
    run_dir = tmp_path / "run"
    run_cli(["backend=mindspore", "dataset=imagefolder", f"dataset.root={root}",
             "dataset.image_size=32", "dataset.resize_size=40", "dataset.num_workers=0",
             "model=resnet50", "epochs=1", "batch_size=4", "log_every_n_steps=1",
             "warmup_epochs=0", f"hydra.run.dir={run_dir}"])
    m = metrics_of(run_dir)
    assert m["status"] == "completed" and m["steps"] == 2 and math.isfinite(m["loss"])
