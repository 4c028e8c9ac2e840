"""A single key on the command line must run: defaults that depend on it follow it."""

from __future__ import annotations

import pytest

from conftest import compose_config
from fishbench.config import RunConfig, validate
from fishbench.errors import ConfigError


def composed(*overrides: str) -> RunConfig:
    return validate(compose_config(*overrides))


@pytest.mark.parametrize("overrides, expected", [
    ((), dict(epochs=3, warmup_epochs=1, T_max=3, batch_size=32)),
    (("epochs=1",), dict(epochs=1, warmup_epochs=0, T_max=1)),  # the default warm-up shortened
    (("epochs=10",), dict(epochs=10, warmup_epochs=1, T_max=10)),  # the cosine follows epochs
    (("epochs=3", "warmup_epochs=2"), dict(epochs=3, warmup_epochs=2, T_max=3)),
])
def test_schedule_defaults_follow_epochs(overrides: tuple[str, ...], expected: dict) -> None:
    run = composed(*overrides)
    assert {key: getattr(run, key) for key in expected} == expected


def test_an_explicit_warmup_that_does_not_fit_is_still_refused() -> None:
    with pytest.raises(ConfigError, match="'warmup_epochs' is 1, but it must be between 0 and "
                                          "epochs - 1"):
        composed("epochs=1", "warmup_epochs=1")


@pytest.mark.parametrize("overrides, resize", [
    (("dataset.image_size=64",), 64),
    (("dataset=synthetic", "dataset.image_size=64"), 64),
    (("dataset=imagenet", "dataset.root=/d"), 256),
    (("dataset=imagenet", "dataset.root=/d", "dataset.image_size=320"), 366),
    (("dataset=imagenet", "dataset.root=/d", "dataset.image_size=320",
      "dataset.resize_size=320"), 320),
])
def test_resize_size_follows_image_size(overrides: tuple[str, ...], resize: int) -> None:
    assert composed(*overrides).dataset.resize_size == resize
