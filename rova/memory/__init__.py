"""Difficulty-aware memory of hard (sample, view) pairs (ROVA; docs/memory.md).

The sampler module needs torch; it is imported on first use. The `memory.*` settings are
rova/config/memory.py (MemoryConfig).
"""

from rova.memory.difficulty import FORMAT_VERSION, DifficultyMemory, MemoryCounters, MemoryEntry
from rova.memory.replay import CHOICES_FILE, MEMORY_FILE, REPLAY_VIEW, ReplayMemory
from rova.memory.views import GroupOutcome, Key, MemoryView

_SAMPLER_NAMES = ("ReplayDataset", "ReplayItem", "ReplayRepeatSampler")

__all__ = [
    "CHOICES_FILE", "FORMAT_VERSION", "MEMORY_FILE", "REPLAY_VIEW", "DifficultyMemory", "GroupOutcome", "Key",
    "MemoryCounters", "MemoryEntry", "MemoryView", "ReplayMemory", *_SAMPLER_NAMES,
]


def __getattr__(name: str):
    if name in _SAMPLER_NAMES:
        from rova.memory import sampler

        return getattr(sampler, name)
    raise AttributeError(f"module 'rova.memory' has no attribute {name!r}")
