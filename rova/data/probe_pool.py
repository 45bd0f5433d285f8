"""Probing many media files: inline, or in a pool of worker processes (data.probe_workers)."""

from __future__ import annotations

from typing import Callable, Sequence, TypeVar

J = TypeVar("J")
R = TypeVar("R")


def probe_all(probe: Callable[[J], R], jobs: Sequence[J], workers: int) -> list[R]:
    """probe(job) of every job, in job order: inline with one worker (or fewer than two jobs), else in `workers`
    processes. `probe` must be a module-level function (it is pickled to the workers)."""
    if workers <= 1 or len(jobs) < 2:
        return [probe(job) for job in jobs]
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    # forkserver: safe in processes that already hold threads (torch, a distributed process group).
    with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("forkserver")) as pool:
        return list(pool.map(probe, jobs, chunksize=max(1, len(jobs) // (workers * 8))))
