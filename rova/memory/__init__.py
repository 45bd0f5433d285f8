"""Difficulty-aware memory of hard (sample, view) pairs (ROVA; docs/memory.md).

The sampler module needs torch; it is imported on first use so that the config schema, which imports
MemoryConfig from here, stays instant on the launch path.
"""

from rova.memory.difficulty import FORMAT_VERSION, DifficultyMemory, MemoryConfig, MemoryCounters, MemoryEntry
from rova.memory.replay import MEMORY_FILE, REPLAY_VIEW, ReplayMemory
from rova.memory.views import GroupOutcome, Key, MemoryView

_SAMPLER_NAMES = ("ReplayDataset", "ReplayItem", "ReplayRepeatSampler")

__all__ = [
    "FORMAT_VERSION", "MEMORY_FILE", "REPLAY_VIEW", "DifficultyMemory", "GroupOutcome", "Key", "MemoryConfig",
    "MemoryCounters", "MemoryEntry", "MemoryView", "ReplayMemory", *_SAMPLER_NAMES,
]


def __getattr__(name: str):
    if name in _SAMPLER_NAMES:
        from rova.memory import sampler

        return getattr(sampler, name)
    raise AttributeError(f"module 'rova.memory' has no attribute {name!r}")
