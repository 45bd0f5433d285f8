"""Difficulty-aware memory: the state machine and its persistence format (ROVA; docs/memory.md).

An entry is one failing VIEW of a training sample (clean, or corrupted with its seed and replayable spec),
keyed by (sample_id, view kind, corruption seed or None). Every `recheck_interval` steps an entry is due
for a greedy re-check on exactly its view: solved -> removed; unsolved -> one strike; `max_strikes`
strikes -> evicted. At most `max_size` entries; adding to a full memory evicts the oldest (FIFO).

Pure Python and deterministic: every rank feeds it the same gathered outcomes at the same steps, so every
rank holds the same state. Selection (`select_replay`) is a pure function of (seed, generation index,
entries): it changes nothing, so calling it for batches that never run (skipped on resume) is harmless.
Which view enters, and when a replay counts, is decided by rova.memory.replay.ReplayMemory.
"""

from __future__ import annotations

import json
import math
import os
import random
from collections.abc import Container
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from rova.config.branches import CLEAN, CORRUPTED
from rova.config.memory import AUGMENT_KEYS, MemoryConfig
from rova.errors import ConfigError, DataError
from rova.memory.views import Key, MemoryView, SampleId, check_sample_id
from rova.utils.io import atomic_write_json

# 2: entries store their failing view (kind, corruption seed, corruption spec); keys are 3-tuples.
FORMAT_VERSION = 2


@dataclass
class MemoryEntry:
    sample_id: SampleId
    view: MemoryView  # the view that failed: the re-check and every replay use exactly this view
    added_step: int
    last_check_step: int  # a re-check is due recheck_interval steps after this
    accuracy: float  # that view's group accuracy when the entry was made
    strikes: int = 0
    replays: int = 0  # replayed rows of this entry whose outcome came back

    @property
    def key(self) -> Key:
        return self.view.key(self.sample_id)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["view"] = self.view.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MemoryEntry:
        names = {f.name for f in fields(cls)}
        raw = {k: v for k, v in data.items() if k in names}
        raw["view"] = MemoryView.from_dict(raw["view"])
        entry = cls(**raw)
        check_sample_id(entry.sample_id)
        return entry


@dataclass
class MemoryCounters:
    """Cumulative event counts since the start of the run (restored on resume)."""

    adds: int = 0
    solved: int = 0
    strikes: int = 0
    evicted_strikes: int = 0
    evicted_overflow: int = 0
    replayed: int = 0
    rechecks: int = 0


def check_key(key: Any) -> Key:
    try:
        sample_id, kind, seed = key
    except (TypeError, ValueError):
        raise TypeError(f"a memory key is (sample_id, view kind, corruption seed or None), got {key!r}") from None
    check_sample_id(sample_id)
    if kind == CLEAN and seed is None:
        return (sample_id, kind, seed)
    if kind == CORRUPTED and isinstance(seed, int) and not isinstance(seed, bool):
        return (sample_id, kind, seed)
    raise TypeError(f"a memory key is (sample_id, 'clean', None) or (sample_id, 'corrupted', int seed), got {key!r}")


@dataclass
class DifficultyMemory:
    config: MemoryConfig = field(default_factory=MemoryConfig)
    # Insertion order is FIFO order (oldest first); dicts keep it, and so does the JSON file.
    _entries: dict[Key, MemoryEntry] = field(default_factory=dict, repr=False)
    counters: MemoryCounters = field(default_factory=MemoryCounters)

    # ---------------------------------------------------------------------------------------------
    # Queries

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def entries(self) -> list[MemoryEntry]:
        """Entries, oldest first (not copies: treat them as read-only)."""
        return list(self._entries.values())

    def keys(self) -> list[Key]:
        return list(self._entries)

    def get(self, key: Key) -> MemoryEntry | None:
        return self._entries.get(key)

    def stats(self) -> dict[str, int]:
        """Numbers to log (unprefixed; the caller adds e.g. "memory/")."""
        c = self.counters
        return {
            "size": len(self._entries),
            "size_clean": sum(1 for key in self._entries if key[1] == CLEAN),
            "size_corrupted": sum(1 for key in self._entries if key[1] == CORRUPTED),
            "adds": c.adds,
            "solved": c.solved,
            "evicted": c.evicted_strikes + c.evicted_overflow,
            "evicted_strikes": c.evicted_strikes,
            "evicted_overflow": c.evicted_overflow,
            "replayed": c.replayed,
            "rechecks": c.rechecks,
            "strikes": c.strikes,
        }

    # ---------------------------------------------------------------------------------------------
    # Transitions

    def add(self, step: int, sample_id: SampleId, view: MemoryView, accuracy: float) -> Key | None:
        """Enter `view` of `sample_id` (its group accuracy failed). A key already in the memory is left as
        it is (its re-check clock and strikes keep running); returns the key added, else None."""
        key = view.key(sample_id)
        if key in self._entries:
            return None
        while len(self._entries) >= self.config.max_size:
            del self._entries[next(iter(self._entries))]
            self.counters.evicted_overflow += 1
        self._entries[key] = MemoryEntry(
            sample_id, view, added_step=step, last_check_step=step, accuracy=float(accuracy)
        )
        self.counters.adds += 1
        return key

    def count_replay(self, key: Key) -> None:
        """A replayed row's outcome came back: count it (and on its entry, if the entry is still here)."""
        self.counters.replayed += 1
        entry = self._entries.get(check_key(key))
        if entry is not None:
            entry.replays += 1

    def replay_count(self, generation_index: int, batch_size: int, available: int | None = None) -> int:
        """How many of `batch_size` prompts come from memory in generation batch `generation_index`:
        replay_frac * batch_size with deterministic stochastic rounding (so small batches still replay at
        the configured rate), capped by `available` (default: the memory size)."""
        want = self.config.replay_frac * batch_size
        whole = math.floor(want)
        if self._rng(generation_index, "count").random() < want - whole:
            whole += 1
        return min(whole, len(self._entries) if available is None else available, batch_size)

    def select_replay(self, generation_index: int, batch_size: int, eligible: Container | None = None) -> list[Key]:
        """Keys to replay in generation batch `generation_index`; PURE (changes nothing) and the same on
        every rank for the same state, seed and index. At most one key per sample id (a batch never holds
        a sample twice); with `eligible`, only sample ids in it are chosen."""
        if batch_size < 0:
            raise ValueError(f"batch_size must be >= 0, got {batch_size}")
        candidates = [key for key in self._entries if eligible is None or key[0] in eligible]
        distinct_ids = len({key[0] for key in candidates})
        count = self.replay_count(generation_index, batch_size, available=distinct_ids)
        if count == 0:
            return []
        self._rng(generation_index, "select").shuffle(candidates)
        chosen, seen = [], set()
        for key in candidates:
            if key[0] not in seen:
                seen.add(key[0])
                chosen.append(key)
                if len(chosen) == count:
                    break
        return chosen

    def due_for_recheck(self, step: int) -> list[Key]:
        """Keys whose re-check is due at `step` (recheck_interval steps since entering or the last check)."""
        interval = self.config.recheck_interval
        return [key for key, entry in self._entries.items() if step - entry.last_check_step >= interval]

    def record_recheck(self, step: int, key: Key, accuracy: float) -> str:
        """Apply the result of a greedy re-check of `key` on its view.

        Solved (accuracy > fail_threshold, the complement of the entry rule) -> removed. Otherwise one
        strike; at max_strikes the entry is evicted, else its clock restarts at `step`. Returns
        "solved", "strike", "evicted", or "absent" (the key left the memory meanwhile; nothing changes).
        """
        entry = self._entries.get(check_key(key))
        if entry is None:
            return "absent"
        self.counters.rechecks += 1
        if float(accuracy) > self.config.fail_threshold:
            del self._entries[entry.key]
            self.counters.solved += 1
            return "solved"
        entry.strikes += 1
        self.counters.strikes += 1
        if entry.strikes >= self.config.max_strikes:
            del self._entries[entry.key]
            self.counters.evicted_strikes += 1
            return "evicted"
        entry.last_check_step = step
        return "strike"

    def _rng(self, index: int, purpose: str) -> random.Random:
        # String seeds go through SHA-512 in `random`, so this is independent of PYTHONHASHSEED and the
        # same on every rank and after a resume.
        return random.Random(f"rova.memory:{self.config.seed}:{index}:{purpose}")

    # ---------------------------------------------------------------------------------------------
    # Persistence

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": FORMAT_VERSION,
            "config": {k: v for k, v in asdict(self.config).items() if k not in AUGMENT_KEYS},
            "counters": asdict(self.counters),
            "entries": [entry.to_dict() for entry in self._entries.values()],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], config: MemoryConfig | None = None) -> DifficultyMemory:
        """Rebuild a memory. `config` (e.g. the resumed run's config) overrides the stored one; if its
        max_size is smaller, the oldest entries are dropped and counted as overflow evictions."""
        if not isinstance(data, dict):
            raise DataError(f"memory state is malformed: expected a JSON object, got {type(data).__name__}")
        version = data.get("version")
        if version != FORMAT_VERSION:
            raise DataError(
                f"memory state has format version {version!r}; this rova reads version {FORMAT_VERSION} "
                "(version 1 entries lack the view that failed and cannot be re-checked or replayed). "
                "Resume with the rova that wrote it, or start the memory fresh (run.resume=false)"
            )
        try:
            known = {f.name for f in fields(MemoryConfig)}
            stored = MemoryConfig(**{k: v for k, v in data["config"].items() if k in known})
            counters = MemoryCounters(**data["counters"])
            entries = {}
            for raw in data["entries"]:
                entry = MemoryEntry.from_dict(raw)
                entries[entry.key] = entry
        except (KeyError, TypeError, ValueError, AttributeError, ConfigError) as error:
            raise DataError(f"memory state is malformed: {error}") from error
        memory = cls(config=config or stored, _entries=entries, counters=counters)
        while len(memory._entries) > memory.config.max_size:
            del memory._entries[next(iter(memory._entries))]
            memory.counters.evicted_overflow += 1
        return memory

    def save(self, path: str | os.PathLike) -> Path:
        """Write the state atomically (temp file + fsync + rename): a crash leaves the old or new file."""
        return atomic_write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike, config: MemoryConfig | None = None) -> DifficultyMemory:
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise DataError(f"{path}: not valid JSON ({error}); the memory file is corrupted") from error
        try:
            return cls.from_dict(data, config=config)
        except DataError as error:
            raise DataError(f"{path}: {error}") from error
