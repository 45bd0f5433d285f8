"""Small validators shared by the config groups: each raises `ConfigError(<dotted key>, <what is allowed>)`."""

from __future__ import annotations

import dataclasses
import math
import typing
from typing import Any, Union

from rova.errors import ConfigError

# numpy's legacy seeding (what transformers' set_seed calls) takes 0 <= seed < 2**32.
SEED_LIMIT = 2**32


def _choice(key: str, value: Any, allowed: tuple) -> None:
    if value not in allowed:
        raise ConfigError(key, f"got {value!r}; allowed: {', '.join(map(str, allowed))}")


def _positive(key: str, value: float, *, allow_zero: bool = False) -> None:
    if value < 0 or (value == 0 and not allow_zero):
        raise ConfigError(key, f"got {value!r}; must be {'>= 0' if allow_zero else '> 0'}")


def _unit(key: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ConfigError(key, f"got {value!r}; must be in [0, 1]")


def _seed(key: str, value: int) -> None:
    if not 0 <= value < SEED_LIMIT:
        raise ConfigError(key, f"got {value!r}; a seed is an integer in [0, 2**32 - 1]")


def _finite(key: str, value: Any) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(key, f"got {value!r}; must be a finite number")


def finite_float_fields(cls: type) -> tuple[str, ...]:
    """The fields of a config dataclass declared `float` or `Optional[float]` that must hold a finite number:
    all of them, unless a field says otherwise with `field(metadata={"finite": False})` (none does today)."""
    hints = typing.get_type_hints(cls)

    def is_float(kind: Any) -> bool:
        if typing.get_origin(kind) is Union:
            return float in typing.get_args(kind)
        return kind is float

    return tuple(f.name for f in dataclasses.fields(cls) if is_float(hints[f.name]) and f.metadata.get("finite", True))
