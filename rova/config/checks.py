"""Small validators shared by the config groups: each raises `ConfigError(<dotted key>, <what is allowed>)`."""

from __future__ import annotations

from typing import Any

from rova.errors import ConfigError


def _choice(key: str, value: Any, allowed: tuple) -> None:
    if value not in allowed:
        raise ConfigError(key, f"got {value!r}; allowed: {', '.join(map(str, allowed))}")


def _positive(key: str, value: float, *, allow_zero: bool = False) -> None:
    if value < 0 or (value == 0 and not allow_zero):
        raise ConfigError(key, f"got {value!r}; must be {'>= 0' if allow_zero else '> 0'}")


def _unit(key: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ConfigError(key, f"got {value!r}; must be in [0, 1]")
