"""The MindSpore trainer in this process: the CPU's loss-scale check, the learning rate each
step applies, the eval stage's normalisation against infer's, and the checkpoint's RNG states and
the divergence check."""

from __future__ import annotations

import random
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
from omegaconf import OmegaConf

from conftest import IMAGENET_SAMPLE, tiny_trainer
from fishbench.backends import get_backend
from fishbench.config import validate
from fishbench.data.decode import eval_crop, pil_decode
from fishbench.data.transforms import EvalTransform
from fishbench.errors import ConfigError
from fishbench.run.checkpoints import Progress, checkpoint_meta
from fishbench.run.infer import normalise
from fishbench.run.schedule import LRSchedule
from tests.helpers.run_if import RunIf

if TYPE_CHECKING:
    import mindspore

pytestmark = RunIf(mindspore=True)


def test_dynamic_loss_scale_on_the_cpu_is_refused_before_any_work() -> None:
    check_runtime = get_backend("mindspore").check_runtime

    cfg = validate(OmegaConf.create({"backend": {"name": "mindspore", "amp_level": "O2"}}))
    with pytest.raises(ConfigError, match="loss_scale=1024"):
        check_runtime(cfg)
    cfg.loss_scale = 1024.0
    check_runtime(cfg)


class LearningRates:
    """A step logger that records the rate the optimizer holds at every step, and its own."""

    def __init__(self, optimizer: mindspore.nn.Optimizer) -> None:
        self.optimizer = optimizer
        self.applied: list[float] = []
        self.logged: list[float] = []

    def due(self, step_in_epoch: int) -> bool:
        return False

    def step(self, epoch: int, step_in_epoch: int, global_step: int, lr: float, loss) -> None:
        self.applied.append(float(self.optimizer.get_lr().asnumpy()))
        self.logged.append(lr)


class Constant:
    """A schedule of one rate."""

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


@RunIf(imagenet_sample=True)
def test_mindspore_eval_stage_normalises_as_infer_does() -> None:
    from fishbench.backends.mindspore.input.augment import FloatStage

    t = EvalTransform(resize=256, size=224, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
    stage = FloatStage(t.mean, t.std, flip=False, jitter=False)
    for jpeg in sorted(IMAGENET_SAMPLE.glob("*.JPEG"))[:10]:
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
    import mindspore as ms

    from fishbench.backends.mindspore.trainer import MindSporeTrainer

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
