"""data.decode_workers: the next generation batch decoded ahead by worker threads, with the same bytes as inline."""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
from pathlib import Path

import pytest

from rova.errors import ConfigError
from tests.support.trainers import make_trainer

# Two prompt groups per generation batch, one generation per optimizer step, the difficulty memory on (its
# replay rows go through the workers too), every view (clean, shuffled, corrupted) built each step.
RUN = (
    "stage=memory", "stage.max_steps=4", "stage.save_steps=100", "stage.num_generations=2",
    "stage.per_device_train_batch_size=4", "memory.fail_threshold=0.99", "memory.replay_frac=0.5", "memory.recheck_interval=2",
    "stage.max_completion_length=8",
)


def record_views(trainer) -> list[tuple]:
    """Wrap the trainer's view phase: one entry per (step, group, branch) with the frames' digest and record."""
    seen: list[tuple] = []
    build = trainer._build_views

    def recording(heads, step):
        views = build(heads, step)
        for g, row in enumerate(heads):
            for branch in sorted(views):
                view = views[branch][g]
                digest = None if view is None else (
                    hashlib.sha256(view.frames.tobytes()).hexdigest(), view.frames.shape, view.sample_fps,
                    json.dumps(view.record, sort_keys=True, default=str),
                )
                seen.append((step, g, row["sample_id"], bool(row.get("replayed")), branch, digest))
        return views

    trainer._build_views = recording
    return seen


def train(cache_dir: Path, tmp_path: Path, *extra: str):
    trainer, _, run_dir = make_trainer(cache_dir, tmp_path, *RUN, *extra)
    seen = record_views(trainer)
    trainer.train()
    metrics = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return trainer, seen, metrics


def test_decode_workers_give_the_same_views_as_inline_decoding(tmp_path, cache_dir):
    inline, inline_views, inline_metrics = train(cache_dir, tmp_path / "inline", "data.decode_workers=0")
    ahead, ahead_views, ahead_metrics = train(cache_dir, tmp_path / "ahead", "data.decode_workers=2")
    assert inline.clip_prefetcher is None
    assert len(inline_views) == 4 * 2 * 3  # 4 steps x 2 groups x 3 branches
    assert {entry[4] for entry in inline_views if entry[5] is not None} == {"clean", "shuffled", "corrupted"}
    assert any(entry[3] for entry in inline_views), "a replayed memory row was among the views"
    assert ahead_views == inline_views
    # Every generation batch after the first came from the workers (the first one has no batch before it).
    assert ahead.clip_prefetcher.hits == 3 * 2 and ahead.clip_prefetcher.misses == 2
    for metrics in (inline_metrics, ahead_metrics):
        waits = [m["perf/data_wait_s"] for m in metrics if "perf/data_wait_s" in m]
        assert len(waits) == 4 and all(w >= 0 for w in waits)


def test_a_worker_error_is_raised_naming_the_file_not_a_hang(tmp_path, cache_dir):
    """A clip that breaks after the up-front probe fails in a worker; the trainer raises, naming the file."""
    trainer, _, _ = make_trainer(cache_dir, tmp_path, *RUN, "data.decode_workers=2")
    trainer.clip_prefetcher.timeout_s = 60
    source = trainer.clip_source
    decode = source.clean
    failing: dict[str, str] = {}

    def clean(row):
        if threading.current_thread().name.startswith("rova-decode") and not failing:
            failing["path"] = row["media_path"]
        if row["media_path"] == failing.get("path"):
            from rova.errors import VideoDecodeError

            raise VideoDecodeError(f"{row['media_path']}: moov atom not found")
        return decode(row)

    source.clean = clean
    with pytest.raises(Exception) as raised:
        trainer.train()
    message = str(raised.value)
    assert failing["path"] in message and "decode worker" in message
    assert not trainer.clip_prefetcher.running  # the workers were stopped on the way out


def test_a_worker_that_never_returns_times_out(tmp_path, cache_dir):
    from rova.training.prefetch import ClipPrefetcher, ClipWorkerError

    release = threading.Event()

    class StuckSource:
        def views(self, row, step, shuffled, corrupted):
            release.wait(30)
            return {}

    prefetcher = ClipPrefetcher(StuckSource(), 1, 2, shuffled=True, corrupted=True, timeout_s=0.5)
    rows = [{"sample_id": "a", "media_path": "/data/a.mp4"}] * 2
    prefetcher.take([], 0, 1)  # a rollout happened: the next offered batch is decoded for step 1
    prefetcher.offer(rows)
    try:
        with pytest.raises(ClipWorkerError, match=r"/data/a\.mp4.*not decoded within"):
            prefetcher.take(rows[:1], 1, 2)
    finally:
        release.set()
        prefetcher.close()


STUCK_THEN_EXIT = """
import threading, time
from rova.training.prefetch import ClipPrefetcher, ClipWorkerError

class Stuck:
    def views(self, row, step, shuffled, corrupted):
        time.sleep(3600)

prefetcher = ClipPrefetcher(Stuck(), 1, 1, shuffled=False, corrupted=False, timeout_s=0.2)
rows = [{"sample_id": "a", "media_path": "/data/a.mp4"}]
prefetcher.take([], 0, 1)
prefetcher.offer(rows)
try:
    prefetcher.take(rows, 1, 2)
except ClipWorkerError as exc:
    print("raised:", exc)
prefetcher.close()
"""


def test_a_stuck_worker_does_not_hold_up_the_process_exit():
    import subprocess
    import sys

    from tests.support.runs import REPO

    proc = subprocess.run([sys.executable, "-c", STUCK_THEN_EXIT], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "raised:" in proc.stdout and "/data/a.mp4" in proc.stdout


def test_broken_videos_are_skipped_and_counted_with_decode_workers(tmp_path, cache_dir, demo_file):
    """A broken video in the data is skipped up front and counted in data_report.json, as without workers."""
    data = tmp_path / "data"
    shutil.copytree(Path(demo_file).parent, data)
    records = json.loads((data / Path(demo_file).name).read_text())
    video = next(r for r in records if r.get("data_type", "video") == "video")
    broken = data / video["path"]
    broken.write_bytes(broken.read_bytes()[:200])  # truncated: no decodable frames
    reports = {}
    for workers in (0, 2):
        trainer, _, run_dir = make_trainer(
            cache_dir, tmp_path / f"w{workers}", *RUN, f"data.train_file={data / Path(demo_file).name}",
            "data.build_demo=false", f"data.decode_workers={workers}", "stage.max_steps=2",
        )
        reports[workers] = json.loads((run_dir / "data_report.json").read_text())
    trainer.train()  # the 2-worker run trains on the kept clips
    assert trainer.state.global_step == 2 and trainer.clip_prefetcher.hits > 0
    assert reports[0]["skipped"] == reports[2]["skipped"] == 1
    assert reports[2]["skipped_media"] == reports[0]["skipped_media"]
    assert str(broken) in reports[2]["skipped_media"][0]["path"]


def test_decode_workers_must_not_be_negative_nor_combined_with_dataloader_workers(tmp_path, cache_dir):
    from rova.config.compose import load
    from tests.support.trainers import run_overrides

    with pytest.raises(ConfigError, match="data.decode_workers"):
        load(run_overrides(cache_dir, tmp_path, "data.decode_workers=-1"))
    # Refused when the config is composed, before any process is spawned.
    with pytest.raises(ConfigError, match="dataloader_num_workers=0"):
        load(run_overrides(cache_dir, tmp_path, *RUN, "data.decode_workers=2", "stage.dataloader_num_workers=1"))


class RecordingSource:
    """A ClipSource stand-in: views are (sample, step) tuples; records which thread computed each."""

    def __init__(self):
        self.calls: list[tuple[str, int, bool]] = []

    def views(self, row, step, shuffled, corrupted):
        in_worker = threading.current_thread().name.startswith("rova-decode")
        self.calls.append((row["sample_id"], step, in_worker))
        return {"clean": (row["sample_id"], step)}


def batch(*ids: str, copies: int = 2) -> list[dict]:
    return [{"sample_id": i, "media_path": f"/data/{i}.mp4"} for i in ids for _ in range(copies)]


def test_prefetcher_decodes_the_next_offered_batch_for_the_predicted_step():
    from rova.training.prefetch import ClipPrefetcher

    source = RecordingSource()
    prefetcher = ClipPrefetcher(source, 2, 2, shuffled=True, corrupted=True, timeout_s=30)
    try:
        first, second, third = batch("a", "b"), batch("c", "d"), batch("e", "f")
        prefetcher.offer(first)
        prefetcher.offer(second)
        prefetcher.offer(second)  # RepeatSampler repeats a generation batch: offered once
        assert [v["clean"] for v in prefetcher.take(first[::2], 0, 3)] == [("a", 0), ("b", 0)]
        assert [v["clean"] for v in prefetcher.take(second[::2], 3, 6)] == [("c", 3), ("d", 3)]
        # Offered only after the rollout before it (steps_per_generation > gradient_accumulation_steps).
        prefetcher.offer(third)
        assert [v["clean"] for v in prefetcher.take(third[::2], 6, 9)] == [("e", 6), ("f", 6)]
        assert (prefetcher.hits, prefetcher.misses) == (4, 2)
        # A mispredicted step: decoded inline at the real step, never the prefetched one.
        prefetcher.offer(first)
        assert [v["clean"] for v in prefetcher.take(first[::2], 10, 12)] == [("a", 10), ("b", 10)]
        assert (prefetcher.hits, prefetcher.misses) == (4, 4)
    finally:
        prefetcher.close()
    by_step = {(sample, step): worker for sample, step, worker in source.calls}
    assert by_step[("c", 3)] and by_step[("e", 6)] and not by_step[("a", 0)] and not by_step[("a", 10)]
    assert not prefetcher.running
