"""What the memory exchanges with a trainer: the view of a sample that failed, and one group's outcome.

Plain dataclasses of JSON values, so they pickle (accelerate's gather_object) and round-trip through
JSON (memory.json, dataset rows). Rules: docs/memory.md.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any, Literal

from rova.config.branches import CLEAN, CORRUPTED
from rova.config.corruption import FAMILY_OF

ViewKind = Literal["clean", "corrupted"]
SampleId = str | int
# (sample_id, view kind, corruption seed or None): one memory entry per failing view of a sample.
Key = tuple[SampleId, str, int | None]

# The keys of rova.corruption.CorruptionRecord.to_dict(), the only spec a ClipSource can replay.
SPEC_KEYS = frozenset({"family", "variant", "severity", "seed", "params"})


def check_sample_id(sample_id: Any) -> SampleId:
    if isinstance(sample_id, bool) or not isinstance(sample_id, (str, int)):
        raise TypeError(f"sample_id must be a str or int (stable across runs), got {sample_id!r}")
    return sample_id


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_spec(spec: Any) -> dict[str, Any]:
    if not isinstance(spec, dict):
        raise TypeError(f"corruption_spec must be a dict (CorruptionRecord.to_dict()) or None, got {spec!r}")
    if set(spec) != SPEC_KEYS:
        raise ValueError(
            f"corruption_spec must be a CorruptionRecord.to_dict() with exactly the keys {sorted(SPEC_KEYS)}, "
            f"got {sorted(spec)}; pass None when the corrupted branch applied no corruption"
        )
    if FAMILY_OF.get(spec["variant"]) != spec["family"]:
        raise ValueError(
            f"corruption_spec names variant {spec['variant']!r} of family {spec['family']!r}: no such variant"
        )
    try:
        # JSON-canonical form (tuples -> lists): the spec in memory equals the spec restored from memory.json.
        return json.loads(json.dumps(spec))
    except (TypeError, ValueError) as error:
        raise TypeError(f"corruption_spec must hold JSON values only: {error}") from error


@dataclass(frozen=True)
class MemoryView:
    """One view of a sample: the clean clip, or a corrupted clip replayable from its seed and spec."""

    kind: ViewKind
    corruption_seed: int | None = None
    corruption_spec: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.kind == CLEAN:
            if self.corruption_seed is not None or self.corruption_spec is not None:
                raise ValueError("a clean view has no corruption_seed and no corruption_spec")
        elif self.kind == CORRUPTED:
            if not _is_int(self.corruption_seed):
                raise TypeError(f"a corrupted view needs an int corruption_seed, got {self.corruption_seed!r}")
            if self.corruption_spec is not None:
                object.__setattr__(self, "corruption_spec", _check_spec(self.corruption_spec))
        else:
            raise ValueError(f"view kind must be {CLEAN!r} or {CORRUPTED!r}, got {self.kind!r}")

    @classmethod
    def clean(cls) -> MemoryView:
        return cls(CLEAN)

    @classmethod
    def corrupted(cls, corruption_seed: int, corruption_spec: dict[str, Any] | None = None) -> MemoryView:
        return cls(CORRUPTED, corruption_seed, corruption_spec)

    def key(self, sample_id: SampleId) -> Key:
        return (check_sample_id(sample_id), self.kind, self.corruption_seed)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "corruption_seed": self.corruption_seed,
            "corruption_spec": copy.deepcopy(self.corruption_spec),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MemoryView:
        return cls(data["kind"], data.get("corruption_seed"), copy.deepcopy(data.get("corruption_spec")))

    # A frozen dataclass with a dict field cannot use the generated hash; hash the identity instead.
    def __hash__(self) -> int:
        return hash((self.kind, self.corruption_seed))


@dataclass
class GroupOutcome:
    """One prompt group of one rollout, as the trainer measured it (the same list on every rank).

    clean_accuracy: mean accuracy of the group's completions on the clean clip.
    corrupted_accuracy: the same on the corrupted clip (None when no corrupted branch ran), whose
        corruption is `corruption_seed` + `corruption_spec` (CorruptionRecord.to_dict(), or None when
        the branch applied no corruption: the seed alone then redraws the same clip).
    replayed: the row's `replay_view` when the row was a memory replay, else None.
    """

    sample_id: SampleId
    clean_accuracy: float
    corrupted_accuracy: float | None = None
    corruption_seed: int | None = None
    corruption_spec: dict[str, Any] | None = None
    replayed: MemoryView | None = None

    def __post_init__(self) -> None:
        check_sample_id(self.sample_id)
        self.clean_accuracy = float(self.clean_accuracy)
        if self.corrupted_accuracy is not None:
            self.corrupted_accuracy = float(self.corrupted_accuracy)
        if isinstance(self.replayed, dict):
            self.replayed = MemoryView.from_dict(self.replayed)
        if self.replayed is not None and not isinstance(self.replayed, MemoryView):
            raise TypeError(f"replayed must be a MemoryView, its to_dict(), or None, got {self.replayed!r}")

    def corrupted_view(self) -> MemoryView:
        return MemoryView.corrupted(self.corruption_seed, self.corruption_spec)

    def to_dict(self) -> dict[str, Any]:
        return {
            "sample_id": self.sample_id,
            "clean_accuracy": self.clean_accuracy,
            "corrupted_accuracy": self.corrupted_accuracy,
            "corruption_seed": self.corruption_seed,
            "corruption_spec": copy.deepcopy(self.corruption_spec),
            "replayed": self.replayed.to_dict() if self.replayed is not None else None,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GroupOutcome:
        return cls(**data)
