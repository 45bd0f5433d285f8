"""Sharded generation jobs (stage=eval, stage=cot, stage=select): which shard a process is, its predictions file, and the merge.

K SLURM array tasks x N processes each give K*N shards; shard i takes items i, i + K*N, ... and writes them to its
own predictions file (rova.inference.predictions), leaving a `.done` marker beside it when all are scored.
Whichever shard finds every marker present merges the files. The process frame that opens the process group and
calls the job is the stages' (rova.stages.setup.run_sharded).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterable, Sequence, TypeVar

from rova.inference.predictions import PredictionStore

T = TypeVar("T")


def shard_of(rank: int, world: int, task: int, tasks: int) -> tuple[int, int]:
    """(this process's shard, number of shards) for process `rank` of `world` in array task `task` of `tasks`."""
    return task * world + rank, tasks * world


def shard_file(run_dir: Path, name: str, shard: int, num_shards: int) -> Path:
    """The predictions file of shard `shard`: `name` (e.g. predictions.jsonl) when it is the only shard, else
    name's stem + `.shard<i>-of-<n>` + its suffix (predictions.shard0-of-2.jsonl)."""
    if num_shards == 1:
        return Path(run_dir) / name
    path = Path(name)
    return Path(run_dir) / f"{path.stem}.shard{shard}-of-{num_shards}{path.suffix}"


def merge_stores(paths: Iterable[str | Path]) -> list[dict[str, Any]]:
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
