"""Reliability (issue 13): what a failed, refused, diverged or interrupted command leaves behind.

Most tests run the real ``run.py`` task function in this process (Hydra writes its ``.hydra/``
files as for a real run) with a stand-in backend: :class:`StubTrainer`, a few numpy arrays
"trained" in microseconds, saved and loaded with pickle. The engine, checkpoint policy, results
writer and app are the real ones; what the test scripts is the stub's loss, its buffers and the
signals it sends itself.
"""

from __future__ import annotations

import errno
import json
import math
import os
import pickle
import signal
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Iterator

import numpy as np
import pytest

from conftest import REPO, tiny_trainer
from fishbench.data.spec import DataSpec
from fishbench.backends.base import Trainer
from fishbench.run.checkpoints import check_meta
from fishbench.run.engine import StepLogger
from fishbench.errors import CheckpointError
from fishbench.run.metrics import Accuracy
from fishbench.run.schedule import LRSchedule

STUB_ARGS = ["dataset=synthetic", "dataset.num_classes=10", "dataset.train_samples=64",
             "dataset.val_samples=10", "batch_size=16", "log_every_n_steps=1", "warmup_epochs=0",
             "epochs=2", "save_checkpoint_epochs=1"]


class StubTrainer(Trainer):
    """A "model" of two arrays: ``weight`` moves by the learning rate each step, ``running_var``
    stands for a BatchNorm buffer. ``script`` makes an epoch's loss NaN, a buffer infinite, or
    calls a function (e.g. one that sends a signal) in the middle of an epoch."""

    script: dict[str, Any] = {}

    def __init__(self, cfg, spec: DataSpec, rank: int = 0, world_size: int = 1,
                 local_rank: int = 0) -> None:
        super().__init__(cfg, spec, rank, world_size)
        self.weights = {"weight": np.zeros(3), "running_var": np.ones(3)}
        self.rng = np.random.default_rng(cfg.seed + rank)
        self.images_skipped = 0

    @property
    def steps_per_epoch(self) -> int:
        return self.spec.train_size // self.cfg.batch_size

    def train_epoch(self, epoch: int, schedule: LRSchedule, first_step: int,
                    logger: StepLogger) -> float:
        for i in range(self.steps_per_epoch):
            lr = schedule.lr(first_step + i)
            self.weights["weight"] += lr * self.rng.random(3)
            if (epoch + 1, i) == self.script.get("call_at"):
                self.script["call"]()
            loss = self.script.get("loss", {}).get(epoch + 1, 1.0 / (epoch + 1))
            logger.step(epoch, i, first_step + i + 1, lr, loss)
        if epoch + 1 == self.script.get("inf_buffer_epoch"):
            self.weights["running_var"][0] = np.inf
        return 1.0 / (epoch + 1)

    val_steps = 1

    def evaluate(self, on_batch=None) -> Accuracy:
        return Accuracy.from_counts([5, 9, 10])

    def rank_rng_states(self) -> list[Any]:
        return [self.rng.bit_generator.state]

    def save_checkpoint(self, path: Path, meta: dict[str, Any], rng_states: list[Any]) -> None:
        write = self.script.get("write_checkpoint", lambda p, data: p.write_bytes(data))
        write(path, pickle.dumps({"meta": meta, "weights": self.weights, "rng": rng_states}))

    def load_checkpoint(self, path: Path, full: bool) -> dict[str, Any]:
        saved = pickle.loads(path.read_bytes())
        check_meta(saved["meta"], self.cfg, path)
        self.weights = saved["weights"]
        if full:
            self.rng.bit_generator.state = saved["rng"][self.rank]
        return saved["meta"]

    def load_weights(self, weights: dict[str, np.ndarray]) -> None:
        self.weights = weights

    def weights_finite(self) -> bool:
        return all(np.isfinite(v).all() for v in self.weights.values())

    def versions(self) -> dict[str, str]:
        return {"stub": "1"}


STUB_BACKEND = SimpleNamespace(check_runtime=lambda config: None, create_trainer=StubTrainer,
                               checkpoint_suffix=".pkl")


@pytest.fixture
def hydra_run(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., int]]:
    """``hydra_run(*args)``: run.py's task function through Hydra in this process with the stub
    backend; returns the exit status (0, 2, or 128 + signal). Restores the signal handlers and
    the logging that Hydra configures."""
    import logging

    import hydra

    from fishbench.run.app import main as task_function
    from fishbench.config import register_resolvers

    register_resolvers()
    main = hydra.main(version_base="1.3", config_path=str(REPO / "conf"),
                      config_name="config")(task_function)
    monkeypatch.setattr("fishbench.run.app.get_backend", lambda name: STUB_BACKEND)
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    root = logging.getLogger()
    log_handlers, log_level = root.handlers[:], root.level
    StubTrainer.script = {}

    def hydra_run(*args: str) -> int:
        flags = [a for a in args if a.startswith("-")]  # Hydra's options before the overrides
        overrides = [a for a in args if not a.startswith("-")]
        monkeypatch.setattr(sys, "argv", ["run.py", *flags, *STUB_ARGS, *overrides])
        try:
            main()
        except SystemExit as exit_:
            return int(exit_.code)
        except KeyboardInterrupt as err:
            return err.exit_code
        return 0

    yield hydra_run
    for signum, handler in handlers.items():
        signal.signal(signum, handler)
    for handler in root.handlers:
        if handler not in log_handlers:
            handler.close()
    root.handlers[:], root.level = log_handlers, log_level


def strict_json(path: Path) -> dict:
    def reject(constant: str) -> None:
        raise AssertionError(f"{path} holds {constant}: not valid JSON")

    return json.loads(path.read_text(), parse_constant=reject)


def snapshot(run_dir: Path) -> dict[str, bytes]:
    names = ["metrics.json", "history.csv", ".hydra/config.yaml", ".hydra/overrides.yaml"]
    return {name: (run_dir / name).read_bytes() for name in names}


# --- item 2: a completed run dir is never degraded by a later command --------------------------


def test_a_completed_run_survives_failed_and_refused_commands(hydra_run, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    assert hydra_run(f"hydra.run.dir={run_dir}") == 0
    (run_dir / "checkpoints" / ".last.pkl.abc123.tmp").write_bytes(b"half")  # a killed write
    before = snapshot(run_dir)
    assert strict_json(run_dir / "metrics.json")["status"] == "completed"
    refused = [
        ["resume=true"],  # nothing left to train: not "completed" with NaNs
        ["resume=true", "epochs=3", "model=resnet50"],  # the checkpoint is another model's
        ["resume=true", "epochs=3", "batch_size=8"],
        ["task=eval", f"ckpt_path={run_dir}"],  # would replace the training run's metrics
        ["seed=7"],  # a fresh run into the same dir
    ]
    for args in refused:
        assert hydra_run(*args, f"hydra.run.dir={run_dir}") == 2, args
        assert snapshot(run_dir) == before, args
    assert hydra_run("resume=true", "epochs=3", f"hydra.run.dir={run_dir}") == 0
    m = strict_json(run_dir / "metrics.json")
    assert (m["status"], m["epochs"], m["steps"]) == ("completed", 3, 12)
    assert (m["best_top1"], m["best_epoch"]) == (50.0, 1)  # every epoch 5/10: the first is best
    assert "epochs=3" in (run_dir / ".hydra" / "overrides.yaml").read_text()


def test_nothing_to_resume_says_so(hydra_run, tmp_path: Path,
                                   capsys: pytest.CaptureFixture) -> None:
    run_dir = tmp_path / "run"
    hydra_run(f"hydra.run.dir={run_dir}")
    assert hydra_run("resume=true", f"hydra.run.dir={run_dir}") == 2
    out = capsys.readouterr().out
    assert "already trained 2 epoch(s) and epochs=2: nothing to resume" in out
    assert "still holds the completed run" in out


def test_metrics_json_is_valid_json_without_numbers_to_write(tmp_path: Path) -> None:
    from fishbench.run.records import RunRecorder

    RunRecorder(tmp_path, {"task": "train"}).finish("failed", top1=math.nan, loss=math.inf)
    m = strict_json(tmp_path / "metrics.json")
    assert (m["top1"], m["loss"], m["status"]) == (None, None, "failed")
    assert "best_top1" not in m  # no epoch finished: no best (compare shows "-")


# --- item 3: a checkpoint is only kept as good when it is finite ----------------------------


def test_nan_in_epoch_1_says_no_checkpoint_exists(hydra_run, tmp_path: Path) -> None:
    StubTrainer.script = {"loss": {1: math.nan}}
    assert hydra_run(f"hydra.run.dir={tmp_path}") == 2
    m = strict_json(tmp_path / "metrics.json")
    assert m["status"] == "failed" and "No checkpoint of this run exists" in m["error"]
    assert "resume=true" not in m["error"] and not (tmp_path / "checkpoints").exists()


def test_an_infinite_buffer_is_never_saved_as_good(hydra_run, tmp_path: Path) -> None:
    StubTrainer.script = {"inf_buffer_epoch": 2}
    assert hydra_run("epochs=3", f"hydra.run.dir={tmp_path}") == 2
    m = strict_json(tmp_path / "metrics.json")
    assert "parameter or buffer" in m["error"] and "checkpoints/last of epoch 1" in m["error"]
    saved = pickle.loads((tmp_path / "checkpoints" / "last.pkl").read_bytes())
    assert saved["meta"]["epoch"] == 1 and np.isfinite(saved["weights"]["running_var"]).all()
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [
        "best.pkl", "epoch_0001.pkl", "last.pkl"]


def test_resume_refuses_a_checkpoint_with_infinite_buffers(hydra_run, tmp_path: Path) -> None:
    hydra_run("epochs=1", f"hydra.run.dir={tmp_path}")
    last = tmp_path / "checkpoints" / "last.pkl"
    saved = pickle.loads(last.read_bytes())
    saved["weights"]["running_var"][:] = np.inf  # as written before this check existed
    last.write_bytes(pickle.dumps(saved))
    (tmp_path / "metrics.json").write_text('{"status": "failed"}')
    assert hydra_run("resume=true", f"hydra.run.dir={tmp_path}") == 2
    assert "NaN or infinite parameters or buffers" in strict_json(tmp_path / "metrics.json")["error"]


def test_the_torch_trainer_sees_an_infinite_batchnorm_statistic_and_restores_its_rng(
        tmp_path: Path) -> None:
    torch = pytest.importorskip("torch", reason="the PyTorch backend needs torch")
    from fishbench.backends.pytorch.trainer import TorchTrainer
    from fishbench.run.checkpoints import Progress, checkpoint_meta

    trainer = tiny_trainer(TorchTrainer)
    path = tmp_path / "last.pt"
    meta = checkpoint_meta(trainer, Progress(1, 2), 0.0, LRSchedule(trainer.cfg, 2))
    trainer.save_checkpoint(path, meta, trainer.rank_rng_states())
    drawn = torch.rand(5)
    assert trainer.load_checkpoint(path, full=True)["epoch"] == 1
    assert torch.equal(torch.rand(5), drawn)  # the RNG is back where the checkpoint was saved
    assert trainer.weights_finite()
    batchnorm = [m for m in trainer.model.modules() if isinstance(m, torch.nn.BatchNorm2d)][-1]
    batchnorm.running_var[0] = math.inf
    assert not trainer.weights_finite()


# --- item 4: resume with another batch size ------------------------------------------------


def test_resume_with_another_batch_size_is_refused(hydra_run, tmp_path: Path) -> None:
    StubTrainer.script = {"call_at": (2, 0), "call": lambda: os.kill(os.getpid(), signal.SIGINT)}
    assert hydra_run(f"hydra.run.dir={tmp_path}") == 130
    StubTrainer.script = {}
    for size in ("32", "8"):
        assert hydra_run("resume=true", f"batch_size={size}", f"hydra.run.dir={tmp_path}") == 2
        error = strict_json(tmp_path / "metrics.json")["error"]
        assert f"batch_size=16 on 1 process(es), this run has batch_size={size}" in error
    assert hydra_run("resume=true", f"hydra.run.dir={tmp_path}") == 0
    assert strict_json(tmp_path / "metrics.json")["steps"] == 8


# --- item 8: SIGTERM/SIGINT mark the run interrupted; stale temp files are removed -------------


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_marks_the_run_interrupted_with_the_resume_hint(hydra_run, tmp_path: Path,
                                                                 signum: int) -> None:
    StubTrainer.script = {"call_at": (2, 1), "call": lambda: os.kill(os.getpid(), signum)}
    assert hydra_run(f"hydra.run.dir={tmp_path}") == 128 + signum
    m = strict_json(tmp_path / "metrics.json")
    assert m["status"] == "interrupted"
    assert signal.Signals(signum).name in m["error"] and "resume=true" in m["error"]
    StubTrainer.script = {}
    assert hydra_run("resume=true", f"hydra.run.dir={tmp_path}") == 0
    assert strict_json(tmp_path / "metrics.json")["status"] == "completed"


def test_an_interrupted_job_of_a_sweep_points_to_fishbench_resume(hydra_run, tmp_path: Path) -> None:
    StubTrainer.script = {"call_at": (2, 1), "call": lambda: os.kill(os.getpid(), signal.SIGTERM)}
    hydra_run("-m", f"hydra.sweep.dir={tmp_path}", "seed=1")
    error = strict_json(tmp_path / "0" / "metrics.json")["error"]
    assert f"`fishbench resume {tmp_path}`" in error and "resume=true" not in error


def test_resume_removes_temp_files_of_a_write_that_was_killed(hydra_run, tmp_path: Path) -> None:
    StubTrainer.script = {"loss": {2: math.nan}}
    hydra_run(f"hydra.run.dir={tmp_path}")
    orphans = [tmp_path / "checkpoints" / ".last.pkl.abc123.tmp", tmp_path / ".metrics.json.x.tmp"]
    for orphan in orphans:
        orphan.write_bytes(b"half")
    StubTrainer.script = {}
    assert hydra_run("resume=true", f"hydra.run.dir={tmp_path}") == 0
    assert not any(p.exists() for p in orphans)


# --- item 7: disk full while checkpointing ------------------------------------------------


def test_disk_full_while_checkpointing_fails_cleanly(hydra_run, tmp_path: Path) -> None:
    def disk_full(path: Path, data: bytes) -> None:
        if pickle.loads(data)["meta"]["epoch"] == 2:
            path.write_bytes(data[:10])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        path.write_bytes(data)

    StubTrainer.script = {"write_checkpoint": disk_full}
    assert hydra_run(f"hydra.run.dir={tmp_path}") == 2
    m = strict_json(tmp_path / "metrics.json")
    assert m["status"] == "failed" and "No space left on device" in m["error"]
    assert str(tmp_path / "checkpoints" / "last.pkl") in m["error"]
    assert pickle.loads((tmp_path / "checkpoints" / "last.pkl").read_bytes())["meta"]["epoch"] == 1
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [
        "best.pkl", "epoch_0001.pkl", "last.pkl"]


# --- item 9: permissions, total time --------------------------------------------------------


def test_results_and_checkpoints_honour_the_umask(hydra_run, tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        hydra_run("epochs=1", f"hydra.run.dir={tmp_path}")
    finally:
        os.umask(old)
    for name in ("metrics.json", "history.csv", "checkpoints/last.pkl"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o640, name


def test_total_time_counts_the_parts_before_a_resume(hydra_run, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    StubTrainer.script = {"loss": {2: math.nan}}
    clock = [1000.0]
    monkeypatch.setattr(time, "time", lambda: clock[0])
    real_step = StepLogger.step

    def slow_step(self, *args):  # every step takes 10 s of the (fake) wall clock
        clock[0] += 10.0
        return real_step(self, *args)

    monkeypatch.setattr(StepLogger, "step", slow_step)
    hydra_run(f"hydra.run.dir={tmp_path}")  # epoch 1 (4 steps) saved, epoch 2 diverges
    StubTrainer.script = {}
    clock[0] += 3600.0  # an hour passes before the resume: not run time
    hydra_run("resume=true", f"hydra.run.dir={tmp_path}")
    assert strict_json(tmp_path / "metrics.json")["total_time_s"] == pytest.approx(80.0)


# --- issue 10: full collections skip what the run built; its end gives that back --------------


@pytest.mark.parametrize("nan_epoch", [None, 2], ids=["completed", "diverged"])
def test_the_heap_is_frozen_from_the_first_step_to_the_runs_end(hydra_run, tmp_path: Path,
                                                                nan_epoch: int | None) -> None:
    """What exists at a run's first step (there: torch.compile's graphs, over a million objects)
    is out of the collector's scans until the run ends, however it ends; then a reference cycle
    of it is reclaimed again (a multirun's next job in this process gets its memory back)."""
    import gc
    import weakref

    class Node:
        pass

    cycle = Node()
    cycle.itself = cycle
    scanned_in_training = []
    losses = {} if nan_epoch is None else {nan_epoch: math.nan}
    StubTrainer.script = {"call_at": (1, 2), "loss": losses,
                          "call": lambda: scanned_in_training.append(
                              any(o is cycle for o in gc.get_objects()))}
    assert hydra_run(f"hydra.run.dir={tmp_path}") == (0 if nan_epoch is None else 2)
    assert scanned_in_training == [False]
    assert any(o is cycle for o in gc.get_objects()) and gc.get_freeze_count() == 0
    ref = weakref.ref(cycle)
    del cycle
    gc.collect()
    assert ref() is None


# --- item 7: compare on odd files ---------------------------------------------------------


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


# --- item 6: silent wrong inputs ----------------------------------------------------------


def test_hidden_files_are_not_indexed(tmp_path: Path) -> None:
    from fishbench.data.index import build_indices
    from test_data import small_tree

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
    from test_data import small_tree

    root = small_tree(tmp_path, classes=2, n=2)
    (root / "train" / "class2").mkdir()
    (root / "train" / "class2" / "notes.txt").write_text("no images")
    with pytest.raises(DataError, match=r"class folder '.*train/class2' holds no images"):
        build_indices(root)


def test_infer_with_a_model_of_other_classes_stops(tmp_path: Path) -> None:
    onnx = pytest.importorskip("onnx", reason="task=infer needs onnx/onnxruntime (.[onnx])")
    pytest.importorskip("onnxruntime", reason="task=infer needs onnxruntime (.[onnx])")
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


# --- item 7: a file that is not a checkpoint ----------------------------------------------


def test_a_file_that_is_not_a_checkpoint_is_named(tmp_path: Path) -> None:
    """Both backends read a ``.pt`` file through this function (MindSpore's own ``.ckpt``
    reader already turns any parse error into the same message)."""
    pytest.importorskip("torch", reason="reading .pt files needs torch")
    from fishbench.backends.pytorch.checkpoint import read_checkpoint

    for i, content in enumerate([b"not a checkpoint\n", pickle.dumps({"a": 1}), b"\x80\x04K"]):
        path = tmp_path / f"{i}.pt"
        path.write_bytes(content)
        with pytest.raises(CheckpointError, match=f"'{path}' is not a fishbench PyTorch"):
            read_checkpoint(path)


# --- items 5 and 8: a world=2 run killed by SIGTERM resumes to the uninterrupted run's numbers ---


def world_2_args(root: Path, run_dir: Path, epochs: int) -> list[str]:
    """World 2 on 16 images of 40x40: 2 steps of 4 per rank and epoch, random 32x32 crops; the
    learning rate of a step does not depend on ``epochs`` (cosine_annealing with a fixed T_max)."""
    return ["world=2", "dataset=imagefolder", f"dataset.root={root}", "dataset.image_size=32",
            "dataset.resize_size=32", "dataset.num_workers=0", "batch_size=4", "lr_init=0.01",
            "schedule=cosine_annealing", "T_max=6", "warmup_epochs=0", "log_every_n_steps=1",
            "save_checkpoint_epochs=1", f"epochs={epochs}", f"hydra.run.dir={run_dir}"]


@pytest.mark.slow
def test_world_2_killed_by_sigterm_resumes_to_the_uninterrupted_result(tmp_path: Path) -> None:
    """SIGTERM (as Slurm sends) to the launcher stops both workers and marks the run interrupted
    (exit 143, no traceback). Rank 1 draws its own random crops: unless its RNG state was saved
    and restored, the resumed run trains on other crops than an uninterrupted one."""
    import subprocess
    import time

    import torch

    from conftest import run_cli
    from fishbench.run.records import read_history
    from test_data import small_tree

    root = small_tree(tmp_path / "data", classes=2, n=8)
    killed, whole = tmp_path / "killed", tmp_path / "whole"
    proc = subprocess.Popen([sys.executable, str(REPO / "run.py"),
                             *world_2_args(root, killed, epochs=50)], cwd=REPO, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    log, deadline = killed / "rank0.log", time.time() + 300
    while not (log.is_file() and "epoch 2/50 step 1/2" in log.read_text()) and time.time() < deadline:
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, output
    assert "Traceback" not in output
    m = strict_json(killed / "metrics.json")
    assert m["status"] == "interrupted" and "SIGTERM" in m["error"] and "resume=true" in m["error"]
    workers = subprocess.run(["pgrep", "-f", f"fishbench.run.worker {killed}"],
                             capture_output=True, text=True).stdout.split()
    assert workers == []

    epochs = torch.load(killed / "checkpoints" / "last.pt", weights_only=True)["meta"]["epoch"] + 1
    run_cli([*world_2_args(root, killed, epochs), "resume=true"])
    run_cli(world_2_args(root, whole, epochs))
    assert read_history(killed)[-1]["train_loss"] == read_history(whole)[-1]["train_loss"]
    a, b = (torch.load(d / "checkpoints" / "last.pt", weights_only=True)["state_dict"]
            for d in (whole, killed))
    assert all(torch.equal(a[k], b[k]) for k in a)
