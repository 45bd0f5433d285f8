"""Difficulty-aware memory (ROVA; docs/rewards.md, "Difficulty-aware memory").

A sample whose group accuracy is <= fail_threshold enters the memory, keyed by (stable sample id,
corruption seed). Each step the trainer replays `replay_frac` of its batch from the memory. Every
`recheck_interval` steps an entry is due for a greedy re-check on its stored corruption seed: solved ->
removed; unsolved -> one strike; `max_strikes` strikes -> evicted. The memory holds at most `max_size`
entries; adding to a full memory evicts the oldest (FIFO).

Pure Python and deterministic: every rank feeds it the same gathered rewards and the same step, so
every rank holds the same state and picks the same replay samples, with no collective call here.

Typical use per optimisation step:
    replay = memory.select_replay(step, batch_size)        # keys to put into this batch
    ...rollouts, rewards gathered from all ranks...
    memory.observe(step, [(sample_id, seed, group_acc), ...])
    for key in memory.due_for_recheck(step): memory.record_recheck(step, key, greedy_accuracy)
    memory.save(run_dir / "memory.json")                    # at every checkpoint
"""

from __future__ import annotations

import json
import math
import os
import random
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from rova.errors import ConfigError, DataError
from rova.utils.io import atomic_write_json

FORMAT_VERSION = 1
SampleId = str | int
Key = tuple[SampleId, int]


@dataclass
class MemoryConfig:
    """The `memory.*` settings; field names are the config keys (also the schema of the `memory` section)."""

    # stage=memory turns this on: hard samples are remembered, replayed and re-checked during RL.
    enabled: bool = False
    # On for stage=memory (conf/stage/memory.yaml); the trainer switches the memory on by this, not by stage name.
    enabled: bool = False
    fail_threshold: float = 0.0
    replay_frac: float = 0.25
    recheck_interval: int = 50
    max_strikes: int = 2
    max_size: int = 100
    seed: int = 0
    # Temporal-R1 / DAPO option applied by the trainer: groups whose reward std is 0 leave the loss.
    variance_filter: bool = False

    def __post_init__(self) -> None:
        if not (isinstance(self.fail_threshold, (int, float)) and 0.0 <= self.fail_threshold < 1.0):
            raise ConfigError("memory.fail_threshold", f"must be in [0, 1), got {self.fail_threshold!r}")
        if not (isinstance(self.replay_frac, (int, float)) and 0.0 <= self.replay_frac <= 1.0):
            raise ConfigError("memory.replay_frac", f"must be in [0, 1], got {self.replay_frac!r}")
        for key in ("recheck_interval", "max_strikes", "max_size"):
            value = getattr(self, key)
            if not (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
                raise ConfigError(f"memory.{key}", f"must be an integer >= 1, got {value!r}")
        if not (isinstance(self.seed, int) and not isinstance(self.seed, bool)):
            raise ConfigError("memory.seed", f"must be an integer, got {self.seed!r}")


@dataclass
class MemoryEntry:
    sample_id: SampleId
    corruption_seed: int
    added_step: int
    last_check_step: int  # a re-check is due recheck_interval steps after this
    accuracy: float  # group accuracy when the sample entered
    strikes: int = 0
    replays: int = 0

    @property
    def key(self) -> Key:
        return (self.sample_id, self.corruption_seed)


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


def _check_key(sample_id: Any, corruption_seed: Any) -> Key:
    if isinstance(sample_id, bool) or not isinstance(sample_id, (str, int)):
        raise TypeError(f"sample_id must be a str or int (stable across runs), got {sample_id!r}")
    if isinstance(corruption_seed, bool) or not isinstance(corruption_seed, int):
        raise TypeError(f"corruption_seed must be an int, got {corruption_seed!r}")
    return (sample_id, corruption_seed)


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
        """Entries, oldest first (copies are not made: treat them as read-only)."""
        return list(self._entries.values())

    def keys(self) -> list[Key]:
        return list(self._entries)

    def get(self, sample_id: SampleId, corruption_seed: int) -> MemoryEntry | None:
        return self._entries.get((sample_id, corruption_seed))

    def stats(self) -> dict[str, int]:
        """Numbers to log (unprefixed; the caller adds e.g. "memory/")."""
        c = self.counters
        return {
            "size": len(self._entries),
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

    def observe(self, step: int, results: Iterable[tuple[SampleId, int, float]]) -> list[Key]:
        """Feed gathered group accuracies (sample_id, corruption_seed, mean accuracy over G).

        Samples with accuracy <= fail_threshold enter the memory (NaN never does); a sample already in
        the memory is left as it is (its re-check clock and strikes keep running). Returns the keys added.
        """
        added = []
        for sample_id, corruption_seed, accuracy in results:
            key = _check_key(sample_id, corruption_seed)
            accuracy = float(accuracy)
            if not accuracy <= self.config.fail_threshold or key in self._entries:
                continue
            while len(self._entries) >= self.config.max_size:
                oldest = next(iter(self._entries))
                del self._entries[oldest]
                self.counters.evicted_overflow += 1
            self._entries[key] = MemoryEntry(
                sample_id=key[0],
                corruption_seed=key[1],
                added_step=step,
                last_check_step=step,
                accuracy=accuracy,
            )
            self.counters.adds += 1
            added.append(key)
        return added

    def replay_count(self, step: int, batch_size: int) -> int:
        """How many of `batch_size` prompts come from memory at `step`: replay_frac * batch_size with
        deterministic stochastic rounding (so small batches still replay at the configured rate),
        capped by the memory size."""
        want = self.config.replay_frac * batch_size
        whole = math.floor(want)
        if self._rng(step, "count").random() < want - whole:
            whole += 1
        return min(whole, len(self._entries), batch_size)

    def select_replay(self, step: int, batch_size: int) -> list[Key]:
        """Keys to replay in the batch of `step`; the same on every rank for the same state, seed and step.

        Call once per step: it counts the replays.
        """
        if batch_size < 0:
            raise ValueError(f"batch_size must be >= 0, got {batch_size}")
        count = self.replay_count(step, batch_size)
        if count == 0:
            return []
        chosen = self._rng(step, "select").sample(list(self._entries), count)
        for key in chosen:
            self._entries[key].replays += 1
        self.counters.replayed += count
        return chosen

    def due_for_recheck(self, step: int) -> list[Key]:
        """Keys whose re-check is due at `step` (recheck_interval steps since entering or the last check)."""
        interval = self.config.recheck_interval
        return [key for key, entry in self._entries.items() if step - entry.last_check_step >= interval]

    def record_recheck(self, step: int, key: Key, accuracy: float) -> str:
        """Apply the result of a greedy re-check of `key` (accuracy of the greedy rollout).

        Solved (accuracy > fail_threshold, the complement of the entry rule) -> removed. Otherwise one
        strike; at max_strikes the entry is evicted, else its clock restarts at `step`. Returns
        "solved", "strike", "evicted", or "absent" (the key left the memory meanwhile; nothing changes).
        """
        key = _check_key(*key)
        entry = self._entries.get(key)
        if entry is None:
            return "absent"
        self.counters.rechecks += 1
        accuracy = float(accuracy)
        if accuracy > self.config.fail_threshold:
            del self._entries[key]
            self.counters.solved += 1
            return "solved"
        entry.strikes += 1
        self.counters.strikes += 1
        if entry.strikes >= self.config.max_strikes:
            del self._entries[key]
            self.counters.evicted_strikes += 1
            return "evicted"
        entry.last_check_step = step
        return "strike"

    def _rng(self, step: int, purpose: str) -> random.Random:
        # String seeds go through SHA-512 in `random`, so this is independent of PYTHONHASHSEED and the
        # same on every rank and after a resume.
        return random.Random(f"rova.memory:{self.config.seed}:{step}:{purpose}")

    # ---------------------------------------------------------------------------------------------
    # Persistence

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": FORMAT_VERSION,
            "config": asdict(self.config),
            "counters": asdict(self.counters),
            "entries": [asdict(entry) for entry in self._entries.values()],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], config: MemoryConfig | None = None) -> DifficultyMemory:
        """Rebuild a memory. `config` (e.g. the resumed run's config) overrides the stored one; if its
        max_size is smaller, the oldest entries are dropped and counted as overflow evictions."""
        try:
            if data.get("version") != FORMAT_VERSION:
                raise ValueError(f"unsupported version {data.get('version')!r} (expected {FORMAT_VERSION})")
            stored = MemoryConfig(**data["config"])
            counters = MemoryCounters(**data["counters"])
            entries = {}
            names = {f.name for f in fields(MemoryEntry)}
            for raw in data["entries"]:
                entry = MemoryEntry(**{k: v for k, v in raw.items() if k in names})
                _check_key(entry.sample_id, entry.corruption_seed)
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
