"""PyTorch models: parameter counts, output shapes, input-size validation, the factory; the
trainer's torch.compile mode."""
from __future__ import annotations

import pytest
import torch

from conftest import n_params, tiny_trainer
from fishbench.backends.pytorch.models import build_model

pytestmark = pytest.mark.usefixtures("single_torch_thread")


@pytest.fixture(scope="module")
def fishnet10() -> torch.nn.Module:
    return build_model("fishnet99", 10).eval()


@pytest.fixture(scope="module")
def resnet10() -> torch.nn.Module:
    return build_model("resnet50", 10).eval()


def test_fishnet99_parameter_count() -> None:
    count = n_params(build_model("fishnet99", 1000))
    assert abs(count - 16.62e6) / 16.62e6 < 0.005, count


def test_resnet50_parameter_count() -> None:
    count = n_params(build_model("resnet50", 1000))
    assert count == 25_557_032  # torchvision resnet50: 25.56 M


def test_fishnet99_head_channels(fishnet10: torch.nn.Module) -> None:
    head = fishnet10.classifier
    assert head.trunk.conv.in_channels == 2112 and head.trunk.conv.out_channels == 1056
    assert head.fc.out_channels == 10 and head.fc.bias is not None


@pytest.mark.parametrize("side,batch", [(32, 2), (64, 2), (224, 1)])
@pytest.mark.parametrize("name", ["fishnet99", "resnet50"])
def test_output_shape(name: str, side: int, batch: int, fishnet10, resnet10) -> None:
    model = fishnet10 if name == "fishnet99" else resnet10
    with torch.no_grad():
        out = model(torch.randn(batch, 3, side, side))
    assert out.shape == (batch, 10)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("shape", [(48, 48), (16, 16), (64, 40)])
def test_fishnet_rejects_side_not_multiple_of_32(shape, fishnet10) -> None:
    with pytest.raises(ValueError, match="multiples of 32"):
        with torch.no_grad():
            fishnet10(torch.randn(1, 3, *shape))


def test_fishnet_trains_one_step() -> None:
    model = build_model("fishnet99", 4).train()
    out = model(torch.randn(2, 3, 32, 32))
    torch.nn.functional.cross_entropy(out, torch.tensor([0, 3])).backward()
    assert all(p.grad is not None for p in model.parameters())


def test_unknown_model_name() -> None:
    with pytest.raises(ValueError, match="fishnet99.*resnet50"):
        build_model("vgg16", 10)


@pytest.mark.parametrize("compile_setting,expected", [
    (None, []),  # the default on the CPU: not compiled
    (True, ["max-autotune-no-cudagraphs"]),
])
def test_trainer_compiles_with_the_configured_mode(monkeypatch, compile_setting, expected) -> None:
    from fishbench.backends.pytorch.trainer import TorchTrainer

    modes = []
    monkeypatch.setattr(torch, "compile", lambda model, mode: modes.append(mode) or model)
    trainer = tiny_trainer(TorchTrainer, backend={"compile": compile_setting,
                                                  "compile_mode": "max-autotune-no-cudagraphs"})
    assert trainer.compiled == bool(expected) and modes == expected
