"""Difficulty-aware memory of hard (sample, corruption) pairs (ROVA)."""

from rova.memory.difficulty import DifficultyMemory, MemoryConfig, MemoryCounters, MemoryEntry

__all__ = ["DifficultyMemory", "MemoryConfig", "MemoryCounters", "MemoryEntry"]
