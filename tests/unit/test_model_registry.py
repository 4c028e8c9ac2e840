"""The model registry: one name list read by config validation, weight conversion and both
backends; each registered model's layer list matches what the backends build."""
from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from conftest import REPO
from fishbench.config import validate
from fishbench.errors import ConfigError
from fishbench.models import names, registry
from fishbench.models.registry import ModelBuilders, list_models, register_model
from tests.helpers.run_if import RunIf


@pytest.fixture
def tiny_model(monkeypatch: pytest.MonkeyPatch) -> str:
    """A model "tiny" (one conv, one dense) registered for one test only."""
    monkeypatch.setattr(registry, "_layer_lists", dict(registry._layer_lists))
    register_model("tiny")(lambda: [("conv", "conv"), ("fc", "dense")])
    return "tiny"


def test_the_registered_models_have_their_config_group_files() -> None:
    assert list_models() == ("fishnet99", "resnet50")
    assert tuple(sorted(p.stem for p in (REPO / "conf" / "model").glob("*.yaml"))) == list_models()


def test_a_registered_model_reaches_validation_and_weight_conversion(tiny_model: str) -> None:
    assert tiny_model in list_models()
    run = validate(OmegaConf.create({"model": {"name": tiny_model}}))
    assert run.model.name == tiny_model
    assert names.name_map(tiny_model) == {"conv.weight": "conv.weight", "fc.weight": "fc.weight",
                                          "fc.bias": "fc.bias"}


def test_validation_lists_the_registered_models(tiny_model: str) -> None:
    with pytest.raises(ConfigError, match="'model.name'.*fishnet99, resnet50, tiny"):
        validate(OmegaConf.create({"model": {"name": "vgg16"}}))


def test_a_name_registers_once(tiny_model: str) -> None:
    with pytest.raises(ValueError, match="'tiny' is registered twice"):
        register_model(tiny_model)(lambda: [])


def test_builders_accept_only_registered_names() -> None:
    with pytest.raises(ValueError, match=r"unregistered models \['vgg16'\]"):
        ModelBuilders("pytorch", {"fishnet99": lambda n: n, "vgg16": lambda n: n})


def test_a_backend_without_a_builder_names_the_model_and_what_it_builds() -> None:
    builders = ModelBuilders("mindspore", {"fishnet99": lambda n: ("fishnet99", n)})
    assert builders.build("fishnet99", 7) == ("fishnet99", 7)
    with pytest.raises(ConfigError, match="'model.name' is 'resnet50', which the mindspore "
                                          "backend cannot build .it builds fishnet99."):
        builders.build("resnet50", 7)
    with pytest.raises(ValueError, match="unknown model 'vgg16'; choose one of .*resnet50"):
        builders.build("vgg16", 7)
    with pytest.raises(ValueError, match="num_classes must be >= 1"):
        builders.build("fishnet99", 0)


def test_every_registered_model_has_a_pytorch_builder() -> None:
    from fishbench.backends.pytorch.models import BUILDERS

    assert BUILDERS.names() == list_models()


@RunIf(mindspore=True)
def test_every_registered_model_has_a_mindspore_builder() -> None:
    from fishbench.backends.mindspore.models import BUILDERS

    assert BUILDERS.names() == list_models()


@pytest.mark.parametrize("name", list_models())
def test_layer_list_names_every_torch_parameter_in_order(name: str) -> None:
    import torch

    from fishbench.backends.pytorch.models import build_model

    with torch.device("meta"):
        state = build_model(name, 10).state_dict()
    expected = [k for k in state if not k.endswith("num_batches_tracked")]
    assert list(names.name_map(name)) == expected
