"""A resumable predictions file (JSON Lines): one line per (cell, item), appended and fsynced as each item (or each
batch of items: `extend`, one write and one fsync) finishes.

A re-run reads the file first and skips every (cell, item) already there, so a killed job (stage=eval, stage=cot, stage=select)
resumes where it stopped and never scores an item twice. A line torn by the kill (no trailing newline, or not
valid JSON) is cut off before anything new is appended. Sharded runs: rova.inference.sharding.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


class PredictionStore:
    """`write=False`: a follower's view of a file another process writes (a sequence-parallel group's other ranks
    track what their first rank writes): it reads the file once, never cuts or appends, and keeps new records in
    memory only."""

    def __init__(self, path: str | os.PathLike, write: bool = True):
        self.path = Path(path)
        self.write = write
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
        if good != len(data) and self.write:  # a torn tail from a killed run: cut it so appends stay valid JSON Lines
            with open(self.path, "r+b") as handle:
                handle.truncate(good)
                handle.flush()
                os.fsync(handle.fileno())

    def done(self, cell: str, item_id: str) -> bool:
        return (cell, item_id) in self.records

    def append(self, record: dict[str, Any]) -> None:
        self.extend([record])

    def extend(self, records: list[dict[str, Any]]) -> None:
        """Append `records` (a generated batch) with one write and one fsync: what a kill leaves is a prefix of
        them (a torn last line is cut by the next run's load), and the next run scores the rest."""
        keys = [(record["cell"], record["item_id"]) for record in records]
        for key in keys:
            if key in self.records:
                raise ValueError(f"{self.path}: {key} is already scored; a prediction is never written twice")
        if len(set(keys)) != len(keys):
            raise ValueError(f"{self.path}: a batch holds one (cell, item) twice; a prediction is never written twice")
        if not records:
            return
        if not self.write:
            self.records.update(zip(keys, records))
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write("".join(json.dumps(record) + "\n" for record in records))
            handle.flush()
            os.fsync(handle.fileno())
        self.records.update(zip(keys, records))

    def cell(self, cell: str) -> list[dict[str, Any]]:
        return [r for (c, _), r in self.records.items() if c == cell]
