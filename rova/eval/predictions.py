"""predictions.jsonl: one line per (cell, item), appended and fsynced as each item finishes.

A re-run reads the file first and skips every (cell, item) already there, so a killed eval resumes
where it stopped and never scores an item twice. A line torn by the kill (no trailing newline, or not
valid JSON) is cut off before anything new is appended. A sharded run (stage=eval, stage=cot) writes one
file per shard and a `.done` marker beside it; complete_shard merges them once every marker is there.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence, TypeVar

CLEAN_CELL = "clean"
T = TypeVar("T")


def cell_name(corruption: str | None, severity: int | None) -> str:
    """"clean", or "<variant>@<severity>" for a cell of the robustness grid."""
    return CLEAN_CELL if corruption is None else f"{corruption}@{int(severity)}"


def parse_cell(name: str) -> tuple[str | None, int | None]:
    if name == CLEAN_CELL:
        return None, None
    corruption, _, severity = name.rpartition("@")
    return corruption, int(severity)


class PredictionStore:
    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.records: dict[tuple[str, str], dict[str, Any]] = {}
        self._load()

    def _load(self) -> None:
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        good = 0
        for line in data.splitlines(keepends=True):
            if not line.endswith(b"\n"):
                break
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                break
            self.records[(record["cell"], record["item_id"])] = record
            good += len(line)
        if good != len(data):  # a torn tail from a killed run: cut it so appends stay valid JSON Lines
            with open(self.path, "r+b") as handle:
                handle.truncate(good)
                handle.flush()
                os.fsync(handle.fileno())

    def done(self, cell: str, item_id: str) -> bool:
        return (cell, item_id) in self.records

    def append(self, record: dict[str, Any]) -> None:
        key = (record["cell"], record["item_id"])
        if key in self.records:
            raise ValueError(f"{self.path}: {key} is already scored; a prediction is never written twice")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        self.records[key] = record

    def cell(self, cell: str) -> list[dict[str, Any]]:
        return [r for (c, _), r in self.records.items() if c == cell]


def merge_stores(paths: Iterable[str | os.PathLike]) -> list[dict[str, Any]]:
    """Every record of several shard files, each (cell, item) once (a duplicate is an error)."""
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    for path in paths:
        for key, record in PredictionStore(path).records.items():
            if key in merged:
                raise ValueError(f"{path}: {key} was also scored by another shard")
            merged[key] = record
    return list(merged.values())


def done_marker(shard_file: Path) -> Path:
    """The `.done` marker a shard leaves beside its predictions file when it has scored all its items."""
    return Path(shard_file).with_suffix(".done")


def complete_shard(shard_files: Sequence[Path], shard: int, *, is_main: bool, barrier: Callable[[], None],
                   lock: Path, label: str, write: Callable[[list[dict[str, Any]]], T]) -> T | None:
    """Mark shard `shard` done; then the task's main process merges, if every shard is done.

    shard_files: every shard's predictions file, in shard order. After the barrier (the task's processes),
    the main process takes `lock` (shared by the SLURM array tasks) and, when every shard's marker exists,
    returns write(merged records), still under the lock; otherwise it says which shards are missing and
    returns None, as do the other processes. The shard that completes the set is the one that merges.
    """
    from rova.utils.locking import file_lock

    done_marker(shard_files[shard]).write_text("done\n")
    barrier()
    if not is_main:
        return None
    num_shards = len(shard_files)
    with file_lock(lock):
        missing = [i for i, path in enumerate(shard_files) if not done_marker(path).exists()]
        if missing:
            print(f"[rova] {label} shard {shard} of {num_shards} done; waiting for shards {missing} to merge",
                  flush=True)
            return None
        return write(merge_stores(shard_files))
