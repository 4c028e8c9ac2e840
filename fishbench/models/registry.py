"""The model registry: the one list of model names, framework-free (standard library only).

Each model family file under ``fishbench.models`` registers its name(s) with
:func:`register_model`, decorating the function that lists the model's parameterised layers;
importing ``fishbench.models`` imports every family file. :func:`list_models` is the name list
that config validation, weight conversion and both backends read. A backend keeps its own
builders in a :class:`ModelBuilders` table, which accepts only registered names and says so
when asked for a model it cannot build.
"""
from __future__ import annotations

from typing import Callable, Generic, Literal, Mapping, TypeVar

from fishbench.errors import ConfigError

#: What a parameterised layer holds: bias-free conv, conv with bias, dense (weight and bias),
#: or BatchNorm (affine parameters and running statistics).
LayerKind = Literal["conv", "conv_bias", "dense", "bn"]
#: One parameterised layer: its name prefix in the model's module tree and its kind.
LayerSpec = tuple[str, LayerKind]
LayerList = Callable[[], list[LayerSpec]]
Model = TypeVar("Model")

_layer_lists: dict[str, LayerList] = {}


def register_model(name: str) -> Callable[[LayerList], LayerList]:
    """Decorator: register model ``name`` with the function listing its parameterised layers,
    in the order of the torch state dict. Raises ValueError when ``name`` is taken."""
    def register(layers: LayerList) -> LayerList:
        if name in _layer_lists:
            raise ValueError(f"model {name!r} is registered twice")
        _layer_lists[name] = layers
        return layers
    return register


def list_models() -> tuple[str, ...]:
    """Every registered model name, sorted."""
    return tuple(sorted(_layer_lists))


def check_registered(name: str) -> None:
    """Raise ValueError, naming the registered models, unless ``name`` is one of them."""
    if name not in _layer_lists:
        raise ValueError(f"unknown model {name!r}; choose one of {list(list_models())}")


def layer_specs(name: str) -> list[LayerSpec]:
    """Every parameterised layer of model ``name`` as (prefix, kind), in the order of the torch
    state dict. Raises ValueError for an unregistered name."""
    check_registered(name)
    return _layer_lists[name]()


class ModelBuilders(Generic[Model]):
    """One backend's model builders (``num_classes -> untrained model``), keyed by registered
    model names; a builder for an unregistered name is a ValueError at construction."""

    def __init__(self, backend: str, builders: Mapping[str, Callable[[int], Model]]) -> None:
        unregistered = sorted(set(builders) - set(list_models()))
        if unregistered:
            raise ValueError(f"the {backend} backend has builders for unregistered models "
                             f"{unregistered}; register them in fishbench.models first")
        self.backend = backend
        self._builders = dict(builders)

    def names(self) -> tuple[str, ...]:
        """The registered models this backend can build, sorted."""
        return tuple(sorted(self._builders))

    def build(self, name: str, num_classes: int) -> Model:
        """An untrained model ``name`` with ``num_classes`` outputs.

        Raises ValueError for an unregistered name or ``num_classes < 1``, and ConfigError for
        a registered model this backend has no builder for.
        """
        if name not in self._builders:
            check_registered(name)
            raise ConfigError(
                f"Config key 'model.name' is {name!r}, which the {self.backend} backend cannot "
                f"build (it builds {', '.join(self.names())}). Choose one of those models, or "
                f"a backend that builds {name} (`python run.py model={name} backend=...`).")
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        return self._builders[name](num_classes)
