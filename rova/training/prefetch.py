"""Decode ahead (data.decode_workers > 0): the next generation batch's clips are decoded while this step trains.

How the next rows are known without changing which rows come: the trainer's dataloader collate hands every
batch it draws to `ClipPrefetcher.offer` (accelerate's DataLoaderShard already draws one batch ahead, and the
HF Trainer a whole optimizer step of batches), so nothing is drawn earlier than without decode workers and the
difficulty memory's replay sampler picks its rows at the same moments. RepeatSampler yields each generation
batch `num_iterations x steps_per_generation` times in a row; consecutive equal batches are offered once.

At each rollout the trainer calls `take(heads, step, next_step)`: the views of these prompt groups at `step`,
from the workers when they were prefetched for exactly that (row, step), else decoded inline right there. The
views are `ClipSource.views(row, step)`, a pure function of (row, step), so the bytes never depend on timing
or on the number of workers. Then the first offered batch not yet rolled out is submitted for `next_step`
(the trainer's prediction; a wrong guess only costs an inline decode): at most one batch is decoded ahead.

Threads, not processes: decord / PyAV decoding, cv2 resizing and the numpy corruptions release the GIL for
most of their time, the clean-clip cache stays shared with the trainer, and frames are not copied between
processes. Errors in a worker are raised by `take` as ClipWorkerError naming the sample and file; a worker
that does not finish within `timeout_s` raises too instead of hanging; `close` drops pending work.
"""

from __future__ import annotations

import json
import queue
import threading
from collections import deque
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from rova.errors import RovaError
from rova.inference.clips import View
from rova.training.clips import ClipSource

# The row fields the views depend on (ClipSource.views): a replayed row differs from a fresh one in the last two.
VIEW_FIELDS = ("sample_id", "media_path", "data_type", "corruption_seed", "corruption_record")
DEFAULT_TIMEOUT_S = 600.0


class ClipWorkerError(RovaError):
    """A decode worker failed (or timed out) on a row; the message names the sample and its media file."""


def row_key(row: dict) -> str:
    return json.dumps({field: row.get(field) for field in VIEW_FIELDS}, sort_keys=True, default=str)


class DaemonPool:
    """Worker threads that never hold up the interpreter's exit (ThreadPoolExecutor joins its threads at exit,
    so one decode stuck on a stalled filesystem would hang the process after training raised)."""

    def __init__(self, workers: int, name: str):
        self._tasks: queue.SimpleQueue = queue.SimpleQueue()
        for i in range(workers):
            threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True).start()
        self._workers = workers

    def submit(self, fn, *args: Any) -> Future:
        future: Future = Future()
        self._tasks.put((future, fn, args))
        return future

    def _work(self) -> None:
        while (task := self._tasks.get()) is not None:
            future, fn, args = task
            if not future.set_running_or_notify_cancel():
                continue  # cancelled while queued
            try:
                future.set_result(fn(*args))
            except BaseException as exc:  # handed to whoever waits on the future
                future.set_exception(exc)

    def shutdown(self) -> None:
        """Each thread ends after its current task (queued tasks should be cancelled first)."""
        for _ in range(self._workers):
            self._tasks.put(None)


def _describe(row: dict) -> str:
    return f"sample {row.get('sample_id')!r} ({row.get('media_path')})"


class ClipPrefetcher:
    def __init__(
        self, clip_source: ClipSource, workers: int, group_size: int, *, shuffled: bool, corrupted: bool,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ):
        if workers < 1:
            raise ValueError(f"ClipPrefetcher needs at least one worker, got {workers}")
        self.clip_source = clip_source
        self.group_size = group_size
        self.shuffled = shuffled
        self.corrupted = corrupted
        self.timeout_s = timeout_s
        self.workers = workers
        self._pool: DaemonPool | None = None  # started by the first submission, again after close()
        self._upcoming: deque[tuple[list[str], list[dict]]] = deque()  # offered batches (keys, heads), not rolled out
        self._last_offered: list[str] | None = None
        self._pending: dict[tuple[str, int], Future] = {}  # (row key, step) -> views being decoded
        self._next_step: int | None = None
        self.hits = 0    # rows whose views came from a worker
        self.misses = 0  # rows decoded inline (first batch, or a mispredicted step)

    # -------------------------------------------------------------- dataloader side
    def collate(self, inner):
        """A collate function that offers each drawn batch's prompt groups, then collates as `inner` does."""
        def collate(rows: list[dict]) -> Any:
            self.offer(rows)
            return inner(rows)

        return collate

    def offer(self, rows: list[dict]) -> None:
        """Note a drawn batch (G consecutive copies per prompt); a batch equal to the last offered one is a repeat."""
        heads = rows[:: self.group_size]
        keys = [row_key(row) for row in heads]
        if keys == self._last_offered:
            return
        self._last_offered = keys
        self._upcoming.append((keys, heads))
        self._pump()

    # -------------------------------------------------------------- trainer side
    def take(self, heads: list[dict], step: int, next_step: int | None) -> list[dict[str, View | None]]:
        """The views of these prompt groups at `step` (waiting for workers, or decoding inline), then start
        decoding the next offered batch for `next_step`."""
        keys = [row_key(row) for row in heads]
        position = next((i for i, (offered, _) in enumerate(self._upcoming) if offered == keys), None)
        for _ in range(position + 1 if position is not None else 0):
            self._upcoming.popleft()  # this batch, and any drawn before it but never rolled out here
        views = []
        for key, row in zip(keys, heads):
            future = self._pending.pop((key, step), None)
            if future is None:
                self.misses += 1
                views.append(self.clip_source.views(row, step, self.shuffled, self.corrupted))
            else:
                self.hits += 1
                views.append(self._result(future, row, step))
        self._drop_stale(step)
        self._next_step = next_step
        self._pump()
        return views

    def _result(self, future: Future, row: dict, step: int) -> dict[str, View | None]:
        try:
            return future.result(timeout=self.timeout_s)
        except FutureTimeout:
            future.cancel()
            raise ClipWorkerError(
                f"decode worker: {_describe(row)} not decoded within {self.timeout_s:g} s (step {step}); "
                "the file may be very long or the filesystem stalled"
            ) from None
        except Exception as exc:
            raise ClipWorkerError(f"decode worker failed on {_describe(row)} at step {step}: {exc}") from exc

    def _drop_stale(self, step: int) -> None:
        for key in [k for k in self._pending if k[1] <= step]:
            self._pending.pop(key).cancel()

    def _pump(self) -> None:
        """Submit the first offered batch for the predicted step, once the current one has been taken."""
        if self._next_step is None or not self._upcoming:
            return
        step = self._next_step
        self._next_step = None  # one batch ahead at most
        if self._pool is None:
            self._pool = DaemonPool(self.workers, "rova-decode")
        for row in self._upcoming[0][1]:
            key = (row_key(row), step)
            if key not in self._pending:
                self._pending[key] = self._pool.submit(self.clip_source.views, row, step, self.shuffled, self.corrupted)

    @property
    def running(self) -> bool:
        return self._pool is not None

    def close(self) -> None:
        """Drop pending work and let the worker threads end (a running decode finishes on its own)."""
        for future in self._pending.values():
            future.cancel()
        self._pending.clear()
        self._upcoming.clear()
        self._last_offered = None
        self._next_step = None
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

