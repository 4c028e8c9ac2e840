"""Real `python run.py` subprocesses on the CPU: the default job and its files, a tiny run
resumed, extended to divergence and evaluated, image trees with bad files, and the errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, TINY, metrics_of, run_cli
from tests.helpers.image_trees import imagenet_tree, jpeg_tree, small_tree
from tests.helpers.run_if import RunIf

pytestmark = pytest.mark.slow


def test_default_job_reaches_90_percent_on_digits(default_run: Path) -> None:
    m = metrics_of(default_run)
    assert m["status"] == "completed"
    assert (m["model"], m["backend"], m["device"], m["world_size"], m["dataset"]) == (
        "fishnet99", "pytorch", "cpu", 1, "digits")
    assert m["top1"] >= 90.0 and m["top5"] >= m["top1"]
    assert m["epochs"] == 3 and m["steps"] == 3 * (1437 // 32)
    assert m["best_top1"] >= m["top1"] and 1 <= m["best_epoch"] <= 3
    assert m["ms_per_step"] > 0 and m["img_per_s"] == pytest.approx(32_000 / m["ms_per_step"])
    assert m["total_time_s"] > 0 and "torch" in m["versions"] and m["images_skipped"] == 0


def test_default_job_writes_history_tensorboard_checkpoints_and_log(default_run: Path) -> None:
    from tbparse import SummaryReader

    lines = (default_run / "history.csv").read_text().splitlines()
    assert lines[0] == "epoch,lr,train_loss,top1,top5,epoch_time_s,img_per_s"
    rows = [dict(zip(lines[0].split(","), map(float, line.split(",")))) for line in lines[1:]]
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert rows[-1]["top1"] == pytest.approx(metrics_of(default_run)["top1"])
    assert rows[-1]["train_loss"] < rows[0]["train_loss"]
    scalars = SummaryReader(str(default_run / "tensorboard")).scalars
    tags = set(scalars["tag"])
    assert {"train/loss", "train/lr", "train/img_per_s", "val/top1", "val/top5"} <= tags
    top1 = scalars[scalars["tag"] == "val/top1"]["value"].tolist()
    assert top1 == pytest.approx([r["top1"] for r in rows], abs=1e-4)
    ckpts = sorted(p.name for p in (default_run / "checkpoints").iterdir())
    assert ckpts == ["best.pt", "epoch_0002.pt", "epoch_0003.pt", "last.pt"]  # every 2nd, the final
    assert "top1" in (default_run / "run.log").read_text()
    assert (default_run / ".hydra" / "config.yaml").is_file()


def test_eval_of_a_checkpoint_reproduces_the_runs_top1(default_run: Path, tmp_path: Path) -> None:
    run_cli(["task=eval", f"ckpt_path={default_run}", f"hydra.run.dir={tmp_path}"])
    m, trained = metrics_of(tmp_path), metrics_of(default_run)
    assert m["status"] == "completed" and m["task"] == "eval"
    assert (m["top1"], m["top5"]) == pytest.approx((trained["top1"], trained["top5"]), abs=1e-9)


def test_train_from_checkpoint_weights_starts_from_them(default_run: Path, tmp_path: Path) -> None:
    run_cli([*TINY, "lr_init=1e-5", f"ckpt_path={default_run}/checkpoints/best.pt",
             f"hydra.run.dir={tmp_path}"])
    assert metrics_of(tmp_path)["top1"] > 80.0  # a fresh 3-step model is near 10 %


def test_resume_continues_the_same_run(tiny_run: Path, tmp_path: Path) -> None:
    import shutil

    run_dir = tmp_path / "run"
    shutil.copytree(tiny_run, run_dir)
    run_cli([*TINY[1:], "epochs=3", "resume=true", f"hydra.run.dir={run_dir}"])
    m = metrics_of(run_dir)
    assert (m["status"], m["epochs"], m["steps"]) == ("completed", 3, 9)
    history = (run_dir / "history.csv").read_text().splitlines()[1:]
    assert [row.split(",")[0] for row in history] == ["1", "2", "3"]
    assert history[0] == (tiny_run / "history.csv").read_text().splitlines()[1]


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tiny_run: Path, tmp_path: Path) -> None:
    """Extending a completed run diverges: the run dir keeps the completed run, untouched."""
    import shutil

    import torch

    run_dir = tmp_path / "run"
    shutil.copytree(tiny_run, run_dir)
    good = (run_dir / "checkpoints" / "last.pt").read_bytes()
    completed = (run_dir / "metrics.json").read_text()
    proc = run_cli([*TINY[1:], "epochs=2", "resume=true", "lr_init=1e30",
                    f"hydra.run.dir={run_dir}"], check=False)
    assert proc.returncode == 2
    assert "loss became" in proc.stdout and "checkpoints/last of epoch 1" in proc.stdout
    assert (run_dir / "metrics.json").read_text() == completed
    assert (run_dir / "checkpoints" / "last.pt").read_bytes() == good
    assert torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)["meta"]["epoch"] == 1


@RunIf(imagenet_sample=True)
def test_imagenet_layout_trains_on_real_jpegs(tmp_path: Path) -> None:
    root = imagenet_tree(tmp_path / "imagenet", "ILSVRC2012_train", "ILSVRC2012_val")
    run_dir = tmp_path / "run"
    run_cli(["dataset=imagenet", f"dataset.root={root}", "dataset.image_size=32",
             "dataset.resize_size=36", "batch_size=8", "max_steps_per_epoch=2", "epochs=1",
             "warmup_epochs=0", f"hydra.run.dir={run_dir}"])
    m = metrics_of(run_dir)
    assert m["status"] == "completed" and m["steps"] == 2 and m["top5"] >= m["top1"] >= 0


def test_images_skipped_counts_each_bad_file_once_per_run(tmp_path: Path, fishbench_cache) -> None:
    root = jpeg_tree(tmp_path / "data", classes=2, per_class=4)
    (root / "train" / "c0" / "bad.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    (root / "val" / "c1" / "bad.jpg").write_bytes(b"")
    (root / "val" / "c1" / "bad.png").write_bytes(b"\x89PNG truncated")
    run_dir = tmp_path / "run"
    run_cli(["dataset=imagefolder", f"dataset.root={root}", "dataset.image_size=32",
             "dataset.resize_size=40", "dataset.num_workers=0", "model=resnet50", "epochs=2",
             "batch_size=3", "max_steps_per_epoch=3", "log_every_n_steps=1", "warmup_epochs=0",
             "T_max=2", f"hydra.run.dir={run_dir}"])
    m = metrics_of(run_dir)
    # Counted once per run, train and val: 3 files (counting per train epoch would give 2).
    assert m["status"] == "completed" and m["images_skipped"] == 3
    # ResNet50's 8.18 GFLOPs at 224x224, scaled to 32x32.
    assert m["model_gflops_per_image"] == pytest.approx(8.178 * (32 / 224) ** 2, rel=0.02)
    assert m["mfu"] is None  # no peak for a CPU


def test_epochs_1_runs_with_the_default_warmup_shortened(tiny_run: Path) -> None:
    metrics = metrics_of(tiny_run)
    assert metrics["status"] == "completed" and metrics["epochs"] == 1 and metrics["steps"] == 3
    log = (tiny_run / "run.log").read_text()
    assert "the default warm-up of 1 epoch(s) is shortened to 0" in log


def expect_failure(args: list[str], run_dir: Path, *phrases: str) -> dict:
    proc = run_cli([*args, f"hydra.run.dir={run_dir}"], check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 2, output
    assert "Traceback" not in output
    for phrase in phrases:
        assert phrase in output
    m = metrics_of(run_dir)
    assert m["status"] == "failed"
    return m


def test_error_missing_dataset_root(tmp_path: Path) -> None:
    expect_failure(["dataset=imagefolder", f"dataset.root={tmp_path}/nope"], tmp_path / "r",
                   "dataset.root", "does not exist", "Accepted layouts")


def test_error_class_count_mismatch(tmp_path: Path) -> None:
    root = small_tree(tmp_path / "data")
    expect_failure(["dataset=imagefolder", f"dataset.root={root}", "model.num_classes=10"],
                   tmp_path / "r", "model.num_classes is 10", "3 classes")


def test_error_unreadable_image_with_bad_images_stop(tmp_path: Path) -> None:
    root = small_tree(tmp_path / "data", classes=2, n=4)
    (root / "train" / "class0" / "0.png").write_bytes(b"broken")
    expect_failure(["dataset=imagefolder", f"dataset.root={root}", "dataset.image_size=32",
                    "dataset.resize_size=32", "dataset.bad_images=stop", "dataset.num_workers=2",
                    *TINY, "batch_size=8"], tmp_path / "r", "0.png", "dataset.bad_images=skip")


def test_error_too_few_images_for_one_batch(tmp_path: Path) -> None:
    root = small_tree(tmp_path / "data", classes=2, n=2)
    expect_failure(["dataset=imagefolder", f"dataset.root={root}", "dataset.image_size=32",
                    "dataset.resize_size=32", *TINY], tmp_path / "r", "has 4 images",
                   "batch_size=16")


@RunIf(cuda=False)
def test_error_gpu_without_cuda(tmp_path: Path) -> None:
    expect_failure(["device=gpu"], tmp_path / "r", "device=gpu", "no CUDA GPU")


@RunIf(torch_npu=False)
def test_error_ascend_without_torch_npu(tmp_path: Path) -> None:
    expect_failure(["device=ascend"], tmp_path / "r", "torch_npu", "CANN")


def test_error_missing_checkpoint(tmp_path: Path) -> None:
    expect_failure(["task=eval", f"ckpt_path={tmp_path}/none.pt"], tmp_path / "r",
                   "ckpt_path", "does not exist")


def test_error_checkpoint_of_another_model(tiny_run: Path, tmp_path: Path) -> None:
    expect_failure(["task=eval", "model=resnet50", f"ckpt_path={tiny_run}"], tmp_path / "r",
                   "holds a fishnet99 checkpoint, but model=resnet50")


def test_error_bad_config_value(tmp_path: Path) -> None:
    expect_failure(["lr_init=-1"], tmp_path / "r", "'lr_init'", "positive")


def test_two_runs_started_together_never_share_a_directory(tmp_path: Path) -> None:
    cmd = [sys.executable, str(REPO / "run.py"), "lr_init=-1"]  # fails fast, still writes its dir
    procs = [subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL) for _ in range(2)]
    assert [p.wait(timeout=120) for p in procs] == [2, 2]
    dirs = list((tmp_path / "outputs" / "runs").glob("*/*"))
    assert len(dirs) == 2
    assert all(json.loads((d / "metrics.json").read_text())["status"] == "failed" for d in dirs)
