"""Config composition (Hydra compose API) and validation of every group and recipe."""

from __future__ import annotations

import itertools

import pytest
from hydra.errors import ConfigCompositionException

from conftest import compose_config
from fishbench.config import validate
from fishbench.errors import ConfigError


@pytest.mark.parametrize("model,backend,device,dataset", itertools.product(
    ("fishnet99", "resnet50"), ("pytorch", "mindspore"), ("cpu", "gpu", "ascend"),
    ("digits", "imagenet", "imagefolder", "synthetic")))
def test_every_group_combination_composes_and_validates(model, backend, device, dataset) -> None:
    cfg = compose_config(f"model={model}", f"backend={backend}", f"device={device}",
                         f"dataset={dataset}", "dataset.root=/data/x")
    run = validate(cfg)
    assert (run.model.name, run.backend.name, run.device.name, run.dataset.name) == (
        model, backend, device, dataset)
    assert run.model.num_classes == {"digits": 10, "imagenet": 1000, "imagefolder": None,
                                     "synthetic": 1000}[dataset]


def test_defaults_are_the_embedded_cpu_job() -> None:
    run = validate(compose_config())
    assert (run.model.name, run.backend.name, run.device.name, run.dataset.name,
            run.schedule.name, run.world.size, run.task) == (
        "fishnet99", "pytorch", "cpu", "digits", "cosine_annealing", 1, "train")
    assert run.dataset.image_size == 32 and run.dataset.hflip is False


@pytest.mark.parametrize("name,expected", [
    ("fishnet99_1dev", dict(batch_size=128, lr_init=0.05, epochs=160, T_max=150, world=1)),
    ("fishnet99_8xascend", dict(batch_size=128, lr_init=0.4, epochs=160, T_max=150, world=8,
                                device="ascend")),
    ("fishnet99_2xgpu", dict(batch_size=128, lr_init=0.1, epochs=110, T_max=100, world=2,
                             device="gpu")),
    ("resnet50_1dev", dict(batch_size=512, lr_init=0.2, epochs=90, world=1, seed=60)),
    ("resnet50_8dev", dict(batch_size=512, lr_init=1.6, epochs=90, world=8, seed=60)),
])
def test_experiments_encode_the_reference_recipes(name: str, expected: dict) -> None:
    run = validate(compose_config(f"experiment={name}", "dataset.root=/data/imagenet"))
    assert run.name == name and run.dataset.name == "imagenet" and run.dataset.image_size == 224
    assert run.model.name == name.split("_")[0]
    assert run.world.size == expected.pop("world")
    if "device" in expected:
        assert run.device.name == expected.pop("device")
    for key, value in expected.items():
        assert getattr(run, key) == value, key
    assert run.momentum == 0.9 and run.weight_decay == 1e-4 and run.label_smoothing == 0.1
    assert run.amp and run.loss_scale == 1024
    if name.startswith("fishnet99"):
        assert run.schedule.name == "cosine_annealing" and run.warmup_epochs == 0
        assert run.eta_min == 0 and run.save_checkpoint_epochs == 2 and run.keep_checkpoint_max == 25
        assert run.dataset.color_jitter == [0.4, 0.4, 0.4, 0.1]
        assert run.dataset.crop_scale == [0.08, 1.0] and run.dataset.resize_size == 256


def test_command_line_overrides_a_recipe() -> None:
    run = validate(compose_config("experiment=fishnet99_1dev", "dataset.root=/d", "lr_init=0.025",
                                  "T_max=100", "device=gpu"))
    assert (run.lr_init, run.T_max, run.device.name, run.epochs) == (0.025, 100, "gpu", 160)


@pytest.mark.parametrize("override,key", [
    ("lr_init=-0.1", "lr_init"),
    ("T_max=0", "T_max"),
    ("batch_size=0", "batch_size"),
    ("lr_init=abc", "lr_init"),
    ("epochs=2.5", "epochs"),
    ("dataset.image_size=48", "dataset.image_size"),
    ("warmup_epochs=6", "warmup_epochs"),
    ("momentum=1.5", "momentum"),
    ("dataset.bad_images=ignore", "dataset.bad_images"),
    ("task=fit", "task"),
    ("dataset=imagenet dataset.root=/d dataset.gpu_decode_share=1.5", "dataset.gpu_decode_share"),
    ("backend.compile_mode=fast", "backend.compile_mode"),
    ("+dataset.rooot=/x", "dataset.rooot"),
    ("lr_init=inf", "lr_init"),
    ("momentum=nan", "momentum"),
    ("dataset.color_jitter=[0.4,0.4,inf,0.1]", "dataset.color_jitter"),
    ("dataset=synthetic dataset.num_classes=1", "dataset.num_classes"),
])
def test_impossible_values_name_their_key(override: str, key: str) -> None:
    with pytest.raises(ConfigError, match=f"'{key}'"):
        validate(compose_config(*override.split()))


def test_missing_imagenet_root_names_the_key() -> None:
    with pytest.raises(ConfigError, match="dataset.root"):
        validate(compose_config("dataset=imagenet"))


def test_unknown_model_is_refused_by_composition() -> None:
    with pytest.raises(ConfigCompositionException, match="model"):
        compose_config("model=vgg16")
