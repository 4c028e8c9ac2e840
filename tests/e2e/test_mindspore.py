"""The MindSpore backend for real on the CPU: training, resume, cross-backend checkpoints,
parity with the PyTorch backend (eval transform, learning rate, top1/top5 of one checkpoint),
export + onnxruntime inference, and the clear errors for missing GPU/Ascend runtimes.

Runs use 32x32 digits with a 60-image val split (6 per class) so that each evaluation is short.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

ms = pytest.importorskip("mindspore", reason="the MindSpore backend tests need mindspore "
                         "(pip install -e .[mindspore])")

from conftest import metrics_of, run_cli, tiny_trainer  # noqa: E402
from fishbench.config import validate  # noqa: E402
from fishbench.data.digits import ensure_digits_tree  # noqa: E402
from fishbench.data.transforms import EvalTransform  # noqa: E402
from fishbench.run.records import read_history  # noqa: E402
from fishbench.run.schedule import LRSchedule  # noqa: E402

pytestmark = pytest.mark.slow
SHARED = Path(__file__).parents[3] / "shared"
VAL_PER_CLASS = 6
RUN = ["epochs=1", "batch_size=16", "max_steps_per_epoch=2", "log_every_n_steps=1",
       "warmup_epochs=0"]


@pytest.fixture(scope="module")
def digits60(tmp_path_factory: pytest.TempPathFactory, fishbench_cache: Path) -> Path:
    """The digits tree with its train split and the first 6 val images of each class."""
    full = ensure_digits_tree(fishbench_cache / "digits")
    root = tmp_path_factory.mktemp("digits60")
    (root / "train").symlink_to(full / "train")
    for folder in sorted((full / "val").iterdir()):
        (root / "val" / folder.name).mkdir(parents=True)
        for image in sorted(folder.iterdir())[:VAL_PER_CLASS]:
            shutil.copy(image, root / "val" / folder.name / image.name)
    return root


def cli(root: Path, run_dir: Path, *args: str, check: bool = True):
    return run_cli([f"dataset.root={root}", f"hydra.run.dir={run_dir}", *args], check=check)


@pytest.fixture(scope="module")
def ms_run(tmp_path_factory: pytest.TempPathFactory, digits60: Path) -> Path:
    """FishNet99 trained by MindSpore (graph mode, the default) for 2 steps."""
    run_dir = tmp_path_factory.mktemp("ms_run")
    cli(digits60, run_dir, "backend=mindspore", *RUN)
    return run_dir


@pytest.fixture(scope="module")
def torch_run(tmp_path_factory: pytest.TempPathFactory, digits60: Path) -> Path:
    """ResNet50 trained by PyTorch for 3 steps (lr low enough to keep predictions varied)."""
    run_dir = tmp_path_factory.mktemp("torch_run")
    cli(digits60, run_dir, "backend=pytorch", "model=resnet50", "lr_init=0.002", *RUN,
        "max_steps_per_epoch=3")
    return run_dir


def test_mindspore_trains_and_evaluates_digits(ms_run: Path) -> None:
    m = metrics_of(ms_run)
    assert m["status"] == "completed" and m["backend"] == "mindspore"
    assert m["versions"]["mindspore"] == ms.__version__
    assert m["versions"]["mindspore_mode"] == "graph"
    assert (m["epochs"], m["steps"], m["images_skipped"]) == (1, 2, 0)
    assert 0 <= m["top1"] <= m["top5"] <= 100 and np.isfinite(m["loss"])
    assert m["top1"] * 60 / 100 == pytest.approx(round(m["top1"] * 60 / 100))  # of 60 images
    [row] = read_history(ms_run)
    assert row["epoch"] == 1 and row["top1"] == pytest.approx(m["top1"])
    assert row["lr"] == pytest.approx(0.05) and row["train_loss"] == pytest.approx(m["loss"])
    names = sorted(p.name for p in (ms_run / "checkpoints").iterdir())
    assert names == ["best.ckpt", "epoch_0001.ckpt", "last.ckpt"]
    assert any((ms_run / "tensorboard").iterdir())


def test_resume_continues_the_step_count(ms_run: Path, digits60: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "resumed"
    shutil.copytree(ms_run, run_dir)
    cli(digits60, run_dir, "backend=mindspore", *RUN, "epochs=2", "resume=true",
        "backend.mode=pynative")  # the other execution mode, on the same checkpoint
    m = metrics_of(run_dir)
    assert m["status"] == "completed" and (m["epochs"], m["steps"]) == (2, 4)
    rows = read_history(run_dir)
    assert [r["epoch"] for r in rows] == [1, 2]
    assert rows[0] == read_history(ms_run)[0]
    assert (run_dir / "checkpoints" / "epoch_0002.ckpt").is_file()


def test_mindspore_evaluates_a_pytorch_checkpoint_to_the_same_top1(
        torch_run: Path, digits60: Path, tmp_path: Path) -> None:
    trained = metrics_of(torch_run)
    cli(digits60, tmp_path, "backend=mindspore", "model=resnet50", "task=eval",
        "batch_size=16", f"ckpt_path={torch_run}")
    m = metrics_of(tmp_path)
    assert m["status"] == "completed" and m["ckpt_path"] == str(torch_run)
    assert 0 < trained["top1"] < 100 and trained["top5"] < 100  # not a degenerate model
    assert (m["top1"], m["top5"]) == pytest.approx((trained["top1"], trained["top5"]))


def test_pytorch_evaluates_a_mindspore_checkpoint_to_the_same_top1(
        ms_run: Path, digits60: Path, tmp_path: Path) -> None:
    trained = metrics_of(ms_run)
    cli(digits60, tmp_path, "backend=pytorch", "task=eval", "batch_size=16",
        f"ckpt_path={ms_run / 'checkpoints' / 'last.ckpt'}")
    m = metrics_of(tmp_path)
    assert (m["top1"], m["top5"]) == pytest.approx((trained["top1"], trained["top5"]))


@pytest.mark.parametrize("backend", ["mindspore", "pytorch"])
def test_export_then_onnxruntime_infer_matches_the_framework(
        backend: str, request: pytest.FixtureRequest, digits60: Path, tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime", reason="task=infer needs onnxruntime (.[onnx])")
    trained_dir = request.getfixturevalue("ms_run" if backend == "mindspore" else "torch_run")
    trained = metrics_of(trained_dir)
    export_dir, infer_dir = tmp_path / "export", tmp_path / "infer"
    proc = cli(digits60, export_dir, f"backend={backend}", f"model={trained['model']}",
               "task=export", f"ckpt_path={trained_dir}")
    if backend == "pytorch":  # the ONNX passes' INFO lines go to the run's log, not the terminal
        assert "onnx_ir" not in proc.stdout and "onnx_ir" in (export_dir / "run.log").read_text()
    exported = metrics_of(export_dir)["exported"]
    assert set(exported) == ({"mindir", "onnx"} if backend == "mindspore" else {"onnx"})
    assert all(Path(path).is_file() for path in exported.values())
    cli(digits60, infer_dir, "task=infer", f"model={trained['model']}",
        f"model_file={exported['onnx']}")
    m = metrics_of(infer_dir)
    assert m["status"] == "completed" and m["images"] == 60 and m["ms_per_image"] > 0
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


def test_dynamic_loss_scale_on_the_cpu_is_refused_before_any_work() -> None:
    from fishbench.backends import get_backend
    from fishbench.errors import ConfigError

    check_runtime = get_backend("mindspore").check_runtime

    cfg = validate(OmegaConf.create({"backend": {"name": "mindspore", "amp_level": "O2"}}))
    with pytest.raises(ConfigError, match="loss_scale=1024"):
        check_runtime(cfg)
    cfg.loss_scale = 1024.0
    check_runtime(cfg)


class LearningRates:
    """A step logger that records the rate the optimizer holds at every step, and its own."""

    def __init__(self, optimizer: ms.nn.Optimizer) -> None:
        self.optimizer = optimizer
        self.applied: list[float] = []
        self.logged: list[float] = []

    def due(self, step_in_epoch: int) -> bool:
        return False

    def step(self, epoch: int, step_in_epoch: int, global_step: int, lr: float, loss) -> None:
        self.applied.append(float(self.optimizer.get_lr().asnumpy()))
        self.logged.append(lr)


class Constant:
    def __init__(self, rate: float) -> None:
        self.rate = rate

    def lr(self, step: int) -> float:
        return self.rate


def test_each_step_applies_the_engines_learning_rate() -> None:
    """Graph mode: the Momentum optimizer's learning-rate Parameter is set from the engine's
    schedule before every step (warm-up, cosine and its rise after T_max), and the compiled step
    applies it (a rate of 0 leaves the weights as they were)."""
    from fishbench.backends.mindspore.trainer import MindSporeTrainer

    trainer = tiny_trainer(MindSporeTrainer, backend={"name": "mindspore"},
                           model={"name": "resnet50"}, epochs=10, warmup_epochs=1, T_max=4,
                           lr_init=0.1)
    steps = trainer.steps_per_epoch
    schedule = LRSchedule(trainer.cfg, steps)
    fc = next(p for p in trainer.net.get_parameters() if p.name == "fc.weight")
    before = fc.asnumpy().copy()
    trainer.train_epoch(0, Constant(0.0), 0, LearningRates(trainer.optimizer))
    assert np.array_equal(fc.asnumpy(), before)
    for epoch in (0, 1, 4, 6):
        record = LearningRates(trainer.optimizer)
        trainer.train_epoch(epoch, schedule, epoch * steps, record)
        expected = [schedule.lr(epoch * steps + i) for i in range(steps)]
        assert record.logged == expected
        assert record.applied == [float(np.float32(lr)) for lr in expected]
    assert not np.array_equal(fc.asnumpy(), before)
    assert schedule.lr(6 * steps) > schedule.lr(4 * steps)  # the rise after T_max is applied too


@pytest.mark.skipif(not (SHARED / "data" / "imagenet-sample").is_dir(),
                    reason="../shared/data/imagenet-sample is absent (it lives beside the checkout)")
def test_mindspore_eval_stage_normalises_as_infer_does() -> None:
    from fishbench.backends.mindspore.input.augment import FloatStage
    from fishbench.data.decode import eval_crop, pil_decode
    from fishbench.run.infer import normalise

    t = EvalTransform(resize=256, size=224, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
    stage = FloatStage(t.mean, t.std, flip=False, jitter=False)
    for jpeg in sorted((SHARED / "data" / "imagenet-sample").glob("*.JPEG"))[:10]:
        crop = pil_decode(jpeg.read_bytes(), lambda w, h: eval_crop(w, h, t))
        [got] = stage(crop[None], np.zeros((1, 9), np.float32)).asnumpy()
        # The backends' eval crops (one shared engine) feed the framework-free infer path too:
        # MindSpore's eval stage must normalise them as infer's numpy does.
        assert got.shape == (3, 224, 224)
        assert np.abs(normalise(crop, t) - got).max() < 1e-5


def test_the_trainer_sees_an_infinite_batchnorm_statistic_and_restores_its_rng(
        tmp_path: Path) -> None:
    """What resume and the divergence check rely on: every rank's RNG states round-trip through
    the checkpoint, and ``weights_finite`` covers BatchNorm's moving statistics."""
    import random

    from fishbench.backends.mindspore.trainer import MindSporeTrainer
    from fishbench.run.checkpoints import Progress, checkpoint_meta

    trainer = tiny_trainer(MindSporeTrainer, backend={"name": "mindspore"},
                           model={"name": "resnet50"})
    path = tmp_path / "last.ckpt"
    meta = checkpoint_meta(trainer, Progress(1, 2), 0.0, LRSchedule(trainer.cfg, 2))
    trainer.save_checkpoint(path, meta, trainer.rank_rng_states())
    drawn = (np.random.rand(3), random.random(), ms.get_rng_state().asnumpy())
    np.random.seed(12345), random.seed(12345), ms.manual_seed(12345)  # other states
    assert not np.array_equal(ms.get_rng_state().asnumpy(), drawn[2])
    assert trainer.load_checkpoint(path, full=True)["epoch"] == 1
    assert np.array_equal(np.random.rand(3), drawn[0]) and random.random() == drawn[1]
    assert np.array_equal(ms.get_rng_state().asnumpy(), drawn[2])
    assert trainer.weights_finite()
    variance = [p for p in trainer.net.get_parameters() if "moving_variance" in p.name][-1]
    variance.set_data(ms.ops.fill(variance.dtype, variance.shape, float("inf")))
    assert not trainer.weights_finite()
