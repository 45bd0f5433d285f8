"""The memory as a trainer component: which view enters, what a batch replays, persistence on resume.

ReplayMemory never calls into a trainer. The trainer drives it with plain values (docs/memory.md):

    keys = memory.replay_keys(generation_index, batch_size)   # pure
    choice = memory.replay_choice(generation_index, batch_size) # the sampler: chosen once, kept in checkpoints
    row = memory.replay_row(dataset_row, key)                 # the row replays exactly the stored view
    ...rollouts; GroupOutcome per prompt group, gathered from all ranks (same list everywhere)...
    added = memory.observe(step, outcomes)                    # entries, and replays counted here
    due = memory.due(step)                                    # greedy re-check on entry.view
    counts = memory.record_rechecks(step, [(entry.key, accuracy), ...])
    memory.save(run_dir, checkpoint_dir)                      # rank 0, at every checkpoint
    memory = ReplayMemory.restore(config, resumed_checkpoint_or_None)
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Container, Iterable
from pathlib import Path
from typing import Any

from rova.errors import DataError
from rova.utils.io import atomic_write_json
from rova.config.memory import MemoryConfig
from rova.memory.difficulty import DifficultyMemory, MemoryEntry, check_key
from rova.memory.views import GroupOutcome, Key, MemoryView

MEMORY_FILE = "memory.json"
# The replays chosen for the latest generation batches (a checkpoint's only; see replay_choice).
CHOICES_FILE = "replay_choices.json"
KEPT_CHOICES = 64  # generation batches whose choice is kept: far more than any DataLoader draws ahead
# Row fields set by replay_row. The trainer passes row[REPLAY_VIEW] back as GroupOutcome.replayed.
REPLAY_VIEW = "replay_view"
RECHECK_OUTCOMES = ("solved", "strike", "evicted", "absent")


class ReplayMemory:
    def __init__(self, config: MemoryConfig | None = None, state: DifficultyMemory | None = None):
        if state is not None and config is not None and state.config != config:
            raise ValueError("ReplayMemory: config differs from state.config; load the state with this config")
        self.state = state if state is not None else DifficultyMemory(config or MemoryConfig())
        self._choices: dict[int, list[tuple[Key, MemoryView]]] = {}

    @property
    def config(self) -> MemoryConfig:
        return self.state.config

    def __len__(self) -> int:
        return len(self.state)

    def __contains__(self, key: object) -> bool:
        return key in self.state

    def keys(self) -> list[Key]:
        return self.state.keys()

    def entries(self) -> list[MemoryEntry]:
        return self.state.entries()

    def entry(self, key: Key) -> MemoryEntry:
        entry = self.state.get(check_key(key))
        if entry is None:
            raise KeyError(f"{key!r} is not in the memory")
        return entry

    # ---------------------------------------------------------------------------------------------
    # Replay

    def replay_keys(self, generation_index: int, batch_size: int, eligible: Container | None = None) -> list[Key]:
        """Keys to swap into generation batch `generation_index` (of `batch_size` distinct prompts).

        Pure: no counter or entry changes, so batches skipped on resume leave the memory as it was. A
        deterministic function of (memory.seed, generation_index, current entries): the same on every
        rank. At most one key per sample id; `eligible` (e.g. the dataset's sample ids) limits the choice.
        """
        return self.state.select_replay(generation_index, batch_size, eligible)

    def replay_choice(self, generation_index: int, batch_size: int,
                      eligible: Container | None = None) -> list[tuple[Key, MemoryView]]:
        """The (key, stored view) pairs that generation batch `generation_index` replays, chosen ONCE.

        The first call chooses (replay_keys, on the memory at that moment) and records the choice; later calls
        return it, whatever the memory holds by then. The latest choices are saved in each checkpoint and
        restored with it: a DataLoader draws a batch ahead, so the batch after a checkpoint was chosen before
        that checkpoint's step, from an older memory; without the record a resumed run chose it again from
        the checkpoint's memory and trained another batch (docs/memory.md). Counters and entries never change.
        """
        choice = self._choices.get(generation_index)
        if choice is None:
            keys = self.replay_keys(generation_index, batch_size, eligible)
            choice = [(key, self.entry(key).view) for key in keys]
            self._choices[generation_index] = choice
            for old in sorted(self._choices)[:-KEPT_CHOICES]:
                del self._choices[old]
        return list(choice)

    def replay_row(self, row: dict[str, Any], key_or_view: Key | MemoryView) -> dict[str, Any]:
        """A copy of the dataset `row` that replays one stored view.

        Corrupted views set `corruption_seed` and `corruption_record` (the stored spec, or None: the seed
        then redraws the same corruption), which the ClipSource replays; clean views clear both. Every
        replay row has `replayed=True` and `replay_view` (MemoryView.to_dict()), to be passed back as
        GroupOutcome.replayed. Given a key, the row must be that key's sample.
        """
        if isinstance(key_or_view, MemoryView):
            view = key_or_view
        else:
            key = check_key(key_or_view)
            if row.get("sample_id") != key[0]:
                raise ValueError(f"replay_row: row is sample {row.get('sample_id')!r}, key {key!r} is another sample")
            view = self.entry(key).view
        out = dict(row)
        out["replayed"] = True
        out[REPLAY_VIEW] = view.to_dict()
        out["corruption_seed"] = view.corruption_seed
        out["corruption_record"] = copy.deepcopy(view.corruption_spec)
        return out

    # ---------------------------------------------------------------------------------------------
    # Outcomes

    def failed_view(self, outcome: GroupOutcome) -> tuple[MemoryView, float] | None:
        """The view an outcome enters with: clean if its clean group failed, else the corrupted view
        (seed + spec) if that group failed, else None. NaN accuracies never fail."""
        threshold = self.config.fail_threshold
        if outcome.clean_accuracy <= threshold:
            return MemoryView.clean(), outcome.clean_accuracy
        if outcome.corrupted_accuracy is not None and outcome.corrupted_accuracy <= threshold:
            if outcome.corruption_seed is None:
                raise ValueError(
                    f"GroupOutcome for sample {outcome.sample_id!r} has a corrupted_accuracy but no corruption_seed"
                )
            return outcome.corrupted_view(), outcome.corrupted_accuracy
        return None

    def observe(self, step: int, outcomes: Iterable[GroupOutcome | dict[str, Any]]) -> list[Key]:
        """Feed the gathered outcomes of one rollout (identical, in the same order, on every rank).

        A group whose failing view is not yet in the memory enters (FIFO eviction when full); a group
        that was a replay counts one replay. Returns the keys added.
        """
        added = []
        for outcome in outcomes:
            if isinstance(outcome, dict):
                outcome = GroupOutcome.from_dict(outcome)
            if outcome.replayed is not None:
                self.state.count_replay(outcome.replayed.key(outcome.sample_id))
            failed = self.failed_view(outcome)
            if failed is not None:
                key = self.state.add(step, outcome.sample_id, *failed)
                if key is not None:
                    added.append(key)
        return added

    def due(self, step: int) -> list[MemoryEntry]:
        """Entries due for a greedy re-check at `step`, oldest first; re-check each on `entry.view`
        (build its row with replay_row(row, entry.key))."""
        return [self.state.get(key) for key in self.state.due_for_recheck(step)]

    def record_rechecks(self, step: int, results: Iterable[tuple[Key, float]]) -> dict[str, int]:
        """Apply gathered re-check accuracies; returns how many were solved / strike / evicted / absent."""
        counts = dict.fromkeys(RECHECK_OUTCOMES, 0)
        seen = set()
        for key, accuracy in results:
            key = check_key(tuple(key))
            if key in seen:
                raise ValueError(f"record_rechecks: {key!r} appears twice in one step's results")
            seen.add(key)
            counts[self.state.record_recheck(step, key, accuracy)] += 1
        return counts

    def metrics(self) -> dict[str, float]:
        """Cumulative numbers to log, unprefixed (size, adds, solved, evicted, replayed, rechecks, ...)."""
        return {name: float(value) for name, value in self.state.stats().items()}

    # ---------------------------------------------------------------------------------------------
    # Persistence

    def to_dict(self) -> dict[str, Any]:
        return self.state.to_dict()

    def save(self, run_dir: str | os.PathLike | None, checkpoint_dir: str | os.PathLike | None = None) -> list[Path]:
        """Write memory.json atomically into the checkpoint (the state a resume restores) and into the run
        dir (an output mirror of the latest state, never read back), and the latest replay choices
        (replay_choice) into the checkpoint. Call on one process only."""
        targets = [Path(d) / MEMORY_FILE for d in (checkpoint_dir, run_dir) if d is not None]
        written = [self.state.save(path) for path in targets]
        if checkpoint_dir is not None:
            choices = [{"generation_index": index, "replays": [{"key": list(key), "view": view.to_dict()}
                                                               for key, view in choice]}
                       for index, choice in sorted(self._choices.items())]
            written.append(atomic_write_json(Path(checkpoint_dir) / CHOICES_FILE, {"choices": choices}))
        return written

    @classmethod
    def restore(cls, config: MemoryConfig, checkpoint_dir: str | os.PathLike | None) -> ReplayMemory:
        """The memory to train with: the state saved in the checkpoint being resumed, or empty when no
        checkpoint is resumed (fresh start, or run.resume=false). The run dir's memory.json is never read.
        A resumed checkpoint without memory.json is an error: its memory state is lost. The replay choices
        recorded in it (replay_choices.json) are restored too."""
        if checkpoint_dir is None:
            return cls(config)
        path = Path(checkpoint_dir) / MEMORY_FILE
        if not path.is_file():
            where = "has no" if Path(checkpoint_dir).is_dir() else "does not exist, so there is no"
            raise DataError(
                f"{checkpoint_dir}: resuming with memory.enabled=true, but this checkpoint {where} {MEMORY_FILE}; "
                "the memory state of that step is lost. Resume from a checkpoint that has it, or start a new "
                "run (run.resume=false) with an empty memory"
            )
        memory = cls(config, DifficultyMemory.load(path, config))
        memory._choices = _load_choices(Path(checkpoint_dir) / CHOICES_FILE)
        return memory


def _load_choices(path: Path) -> dict[int, list[tuple[Key, MemoryView]]]:
    """The recorded replay choices of a checkpoint (none in one written before they were recorded)."""
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return {int(item["generation_index"]): [(check_key(tuple(r["key"])), MemoryView.from_dict(r["view"]))
                                                for r in item["replays"]]
                for item in data["choices"]}
    except (ValueError, TypeError, KeyError) as error:
        raise DataError(f"{path}: malformed replay choices ({error}); the checkpoint is damaged") from error


__all__ = ["CHOICES_FILE", "MEMORY_FILE", "REPLAY_VIEW", "ReplayMemory"]
