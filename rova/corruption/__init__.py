"""Corruption engine: real-world degradations of video clips, coherent per clip, seeded, replayable.

Definitions: ../shared/docs/corruptions.md. One module per family (photometric, weather, occlusion,
shake, temporal); `engine` holds the contract. The catalogue of names and the `corruption.*` settings
are config: rova/config/corruption.py.

The engine (numpy, OpenCV) is imported on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rova.corruption.engine import (
        CorruptionRecord,
        CorruptionSpec,
        apply_random_corruption,
        corrupt,
        draw_corruption,
        replay,
    )
    from rova.corruption.temporal import shuffle_frames

_LAZY = {
    "CorruptionRecord": "rova.corruption.engine",
    "CorruptionSpec": "rova.corruption.engine",
    "apply_random_corruption": "rova.corruption.engine",
    "corrupt": "rova.corruption.engine",
    "draw_corruption": "rova.corruption.engine",
    "replay": "rova.corruption.engine",
    "shuffle_frames": "rova.corruption.temporal",
}

# Spelled out (not `[*_LAZY]`) so linters see the lazy names as exported.
__all__ = ["CorruptionRecord", "CorruptionSpec", "apply_random_corruption", "corrupt", "draw_corruption", "replay",
           "shuffle_frames"]
assert set(__all__) == set(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'rova.corruption' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
