"""Corruption engine: real-world degradations of video clips, coherent per clip, seeded, replayable.

Definitions: ../shared/docs/corruptions.md. One module per family (photometric, weather, occlusion,
shake, temporal); `engine` holds the contract, `config` the `corruption.*` schema.

The engine (numpy, OpenCV) is imported on first use, so that `rova.corruption.config` stays instant
on the launch path.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from rova.corruption.catalogue import FAMILIES, FAMILY_OF, VARIANTS_BY_FAMILY

if TYPE_CHECKING:
    from rova.corruption.config import CorruptionConfig
    from rova.corruption.engine import (
        CorruptionRecord,
        CorruptionSpec,
        apply_random_corruption,
        corrupt,
        draw_corruption,
        replay,
    )
    from rova.corruption.temporal import shuffle_frames

# Every variant name, family by family (variant names are unique across families).
VARIANTS: tuple[str, ...] = tuple(v for f in FAMILIES for v in VARIANTS_BY_FAMILY[f])

_LAZY = {
    "CorruptionConfig": "rova.corruption.config",
    "CorruptionRecord": "rova.corruption.engine",
    "CorruptionSpec": "rova.corruption.engine",
    "apply_random_corruption": "rova.corruption.engine",
    "corrupt": "rova.corruption.engine",
    "draw_corruption": "rova.corruption.engine",
    "replay": "rova.corruption.engine",
    "shuffle_frames": "rova.corruption.temporal",
}

__all__ = ["FAMILIES", "FAMILY_OF", "VARIANTS", "VARIANTS_BY_FAMILY", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'rova.corruption' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
