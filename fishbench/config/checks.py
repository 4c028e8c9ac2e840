"""The one form of a config error: the key, its value, what it must be, and where to fix it."""

from __future__ import annotations

from typing import Any

from fishbench.errors import ConfigError


def check(ok: bool, key: str, value: Any, expected: str) -> None:
    if not ok:
        raise ConfigError(
            f"Config key '{key}' is {value!r}, but it must be {expected}. "
            f"Fix it on the command line (e.g. `python run.py {key}=...`) or in your config file."
        )


def check_choice(key: str, value: str, choices: tuple[str, ...]) -> None:
    check(value in choices, key, value, "one of " + ", ".join(choices))
