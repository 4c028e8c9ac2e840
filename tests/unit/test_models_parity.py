"""PyTorch <-> MindSpore model parity: same parameter counts, weights converted by
``fishbench.models.names`` give the same fp32 eval logits (relative error < 1e-4), and the conversion
round-trips exactly in both directions. 64x64 inputs, batch 2, PyNative mode."""
from __future__ import annotations

from typing import Iterator

import numpy as np
import pytest
import torch

from conftest import n_params
from fishbench.backends.pytorch.models import build_model as build_torch
from fishbench.models import names as convert
from fishbench.models.registry import list_models
from tests.helpers.run_if import RunIf

NUM_CLASSES = 10
REL_TOL = 1e-4

pytestmark = [RunIf(mindspore=True), pytest.mark.usefixtures("single_torch_thread")]


@pytest.fixture(scope="module", autouse=True)
def ms(mindspore_cpu: None) -> Iterator:
    """MindSpore in PyNative mode on CPU; absorb a one-off start-up failure of it under NumPy 2.

    MindSpore 2.10's PyNative argument parser was built against NumPy 1.x: with NumPy 2 its
    first call of an op that takes a tuple argument raises SystemError (NumPy C-API import
    failure) once per process, and every later call works. The warm-up call takes that hit here
    so that the tests measure the models, not the environment. A warm-up that fails twice is a
    real error and is not hidden.
    """
    import mindspore as ms

    mode = ms.get_context("mode")
    ms.set_context(mode=ms.PYNATIVE_MODE)
    probe = ms.Tensor(np.zeros((1, 1), np.float32))
    try:
        ms.ops.reshape(probe, (1,))
    except SystemError:
        ms.ops.reshape(probe, (1,))
    yield ms
    ms.set_context(mode=mode)  # as later tests in this process expect it


def build_ms(name: str, num_classes: int):
    from fishbench.backends.mindspore.models import build_model

    return build_model(name, num_classes)


def relative_error(actual: np.ndarray, expected: np.ndarray) -> float:
    """max |actual - expected| / max |expected| (a norm-wise relative error)."""
    return float(np.abs(actual - expected).max() / np.abs(expected).max())


def randomize_batch_norm(model: torch.nn.Module, seed: int) -> None:
    """Give every BatchNorm non-trivial affine parameters and running statistics."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                c = m.num_features
                m.weight.copy_(0.5 + torch.rand(c, generator=gen))
                m.bias.copy_(0.1 * torch.randn(c, generator=gen))
                m.running_mean.copy_(0.1 * torch.randn(c, generator=gen))
                m.running_var.copy_(0.5 + torch.rand(c, generator=gen))
                m.num_batches_tracked.fill_(7)


def assert_exact_copies(back: dict[str, np.ndarray], original: dict[str, np.ndarray]) -> None:
    """Every array of ``original`` came back under its name with the same dtype and values."""
    for k, v in original.items():
        assert back[k].dtype == v.dtype and np.array_equal(back[k], v), k


def ms_params(net) -> dict[str, np.ndarray]:
    return {p.name: p.asnumpy() for p in net.get_parameters()}


def load_into_ms(net, arrays: dict[str, np.ndarray]) -> None:
    import mindspore as ms

    params = {k: ms.Parameter(ms.Tensor(v), name=k) for k, v in arrays.items()}
    not_loaded, unused = ms.load_param_into_net(net, params, strict_load=True)
    assert not not_loaded and not unused, (not_loaded, unused)


def load_into_torch(model: torch.nn.Module, arrays: dict[str, np.ndarray]) -> None:
    model.load_state_dict({k: torch.from_numpy(v) for k, v in arrays.items()}, strict=True)


def torch_logits(model: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model.eval()(torch.from_numpy(x)).numpy()


def ms_logits(net, x: np.ndarray) -> np.ndarray:
    import mindspore as ms

    net.set_train(False)
    return net(ms.Tensor(x)).asnumpy()


@pytest.fixture(scope="module")
def batch() -> np.ndarray:
    return np.random.default_rng(0).standard_normal((2, 3, 64, 64)).astype(np.float32)


@pytest.fixture(scope="module", params=list_models())
def pair(request, ms):
    """(name, torch model with randomised BN, MindSpore model with its own initialisation)."""
    name = request.param
    torch.manual_seed(0)
    ms.set_seed(0)
    model = build_torch(name, NUM_CLASSES)
    randomize_batch_norm(model, seed=1)
    return name, model.eval(), build_ms(name, NUM_CLASSES)


def test_parameter_counts_match(pair) -> None:
    name, model, net = pair
    n_torch = n_params(model)
    n_ms = sum(int(np.prod(p.shape)) for p in net.trainable_params())
    assert n_ms == n_torch
    assert len(net.trainable_params()) == len(list(model.parameters()))


def test_torch_to_mindspore_logits(pair, batch) -> None:
    name, model, _ = pair
    net = build_ms(name, NUM_CLASSES)
    load_into_ms(net, convert.torch_state_to_mindspore(model.state_dict(), name))
    expected, actual = torch_logits(model, batch), ms_logits(net, batch)
    assert actual.shape == (2, NUM_CLASSES)
    assert relative_error(actual, expected) < REL_TOL


def test_mindspore_to_torch_logits(pair, batch) -> None:
    name, _, net = pair
    model = build_torch(name, NUM_CLASSES)
    load_into_torch(model, convert.mindspore_params_to_torch(ms_params(net), name))
    expected, actual = ms_logits(net, batch), torch_logits(model, batch)
    assert relative_error(actual, expected) < REL_TOL


def test_round_trip_torch_mindspore_torch_is_exact(pair) -> None:
    name, model, _ = pair
    state = {k: v.numpy() for k, v in model.state_dict().items()
             if not k.endswith("num_batches_tracked")}
    back = convert.mindspore_params_to_torch(convert.torch_state_to_mindspore(state, name), name)
    assert list(back) == list(state)
    assert_exact_copies(back, state)


def test_round_trip_mindspore_torch_mindspore_is_exact(pair) -> None:
    name, _, net = pair
    params = ms_params(net)
    back = convert.torch_state_to_mindspore(convert.mindspore_params_to_torch(params, name), name)
    assert set(back) == set(params)
    assert_exact_copies(back, params)


def test_batch_norm_names(pair) -> None:
    name, model, _ = pair
    converted = convert.torch_state_to_mindspore(model.state_dict(), name)
    assert "bn1.gamma" in converted or "stem.bn1.gamma" in converted
    suffixes = {k.rsplit(".", 1)[1] for k in converted}
    assert {"gamma", "beta", "moving_mean", "moving_variance"} <= suffixes
    assert not suffixes & {"running_mean", "running_var", "num_batches_tracked"}


def test_converter_names_missing_and_unexpected_keys(pair) -> None:
    name, model, _ = pair
    state = dict(model.state_dict())
    first = next(iter(state))
    state.pop(first)
    state["extra.weight"] = torch.zeros(1)
    with pytest.raises(ValueError, match="missing keys: .*" + first.replace(".", r"\.")
                       + r".*unexpected keys: extra\.weight"):
        convert.torch_state_to_mindspore(state, name)
    with pytest.raises(ValueError, match="missing keys"):
        convert.mindspore_params_to_torch({}, name)
    with pytest.raises(ValueError, match="unknown model"):
        convert.torch_state_to_mindspore(model.state_dict(), "vgg16")


def test_mindspore_fishnet_input_sides(ms) -> None:
    net = build_ms("fishnet99", NUM_CLASSES)
    net.set_train(False)
    assert net(ms.Tensor(np.zeros((1, 3, 32, 32), np.float32))).shape == (1, NUM_CLASSES)
    with pytest.raises(ValueError, match="multiples of 32"):
        net(ms.Tensor(np.zeros((1, 3, 48, 48), np.float32)))


def test_mindspore_unknown_model_name() -> None:
    with pytest.raises(ValueError, match="fishnet99.*resnet50"):
        build_ms("vgg16", NUM_CLASSES)
