"""The demo dataset: real H.264 clips whose answers can be checked against the decoded frames."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from rova.data.demo import annotation_name, build_demo_dataset
from rova.data.records import VIDEO_R1_PROBLEM_TYPES, load_records
from rova.config.data import FrameSamplingConfig
from rova.data.video import filter_decodable, read_clip

PX = 28 * 28
# Every source frame, at source size (160x120 is 19200 px = 24.5 * 28 * 28; allow up to 32).
ALL_FRAMES = FrameSamplingConfig(
    fps=1000.0, min_frames=2, max_frames=1000, min_pixels=4 * PX, max_pixels=32 * PX, total_pixels=10**9
)
TRAIN_LIKE = FrameSamplingConfig(
    fps=2.0, min_frames=4, max_frames=16, min_pixels=64 * PX, max_pixels=128 * PX, total_pixels=2048 * PX
)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    started = time.perf_counter()
    path = build_demo_dataset(out, num_clips=16, seed=3)
    return path, time.perf_counter() - started


@pytest.fixture(scope="module")
def records(demo):
    return load_records(demo[0])


def _frames(record) -> np.ndarray:
    clip = read_clip(record.media_path, ALL_FRAMES, "pyav")
    assert clip.nframes == record.extra["demo"]["num_frames"]
    return clip.frames.astype(np.int16)


def _mask(frame: np.ndarray, rgb) -> np.ndarray:
    return np.abs(frame - np.array(rgb, dtype=np.int16)).sum(axis=2) < 90


def _centroid(frame, rgb) -> tuple[float, float]:
    ys, xs = np.nonzero(_mask(frame, rgb))
    assert len(xs) > 20, "object visible"
    return xs.mean() / frame.shape[1], ys.mean() / frame.shape[0]


def _visible(frame, rgb) -> bool:
    return int(_mask(frame, rgb).sum()) > 20


def _letter_of(record, text: str) -> str:
    for option in record.options:
        letter, _, body = option.partition(". ")
        if body == text:
            return letter
    raise AssertionError(f"{text!r} not among options {record.options}")


def test_schema_types_and_loading(demo, records):
    path, seconds = demo
    raw = json.loads(Path(path).read_text())
    assert Path(path).name == annotation_name(16) == "demo-16.json" and len(raw) == len(records) == 16
    assert all(r["path"].startswith("./videos/") and r["path"].endswith(".mp4") for r in raw)
    # one of each of Video-R1's types; grounded_qa and tracking (VideoChat-R1) have no demo clip yet
    assert {r.problem_type for r in records} == set(VIDEO_R1_PROBLEM_TYPES)
    for rec in records:
        assert Path(rec.media_path).is_file()
        assert rec.process.startswith("<think>") and rec.process.endswith("</think>")
        assert rec.solution.startswith("<answer>") and rec.solution.endswith("</answer>")
        if rec.problem_type == "multiple choice":
            assert rec.answer in [o.split(".")[0] for o in rec.options]
    grounding = next(r for r in records if r.problem_type == "grounding")
    start, end = json.loads(grounding.answer)
    assert 0 <= start < end <= 3.0
    assert seconds < 20, f"demo build took {seconds:.1f}s"


def test_clips_are_real_h264_and_decodable(records):
    import av

    with av.open(records[0].media_path) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264" and stream.format.name == "yuv420p"
        assert (stream.width, stream.height, stream.frames) == (160, 120, 24)
    kept, skipped = filter_decodable(records, TRAIN_LIKE, "decord")
    assert len(kept) == len(records) and not skipped


def test_direction_answers_match_the_pixels(records):
    checked = 0
    for rec in (r for r in records if r.extra["demo"]["kind"] in ("direction", "motion_caption")):
        frames = _frames(rec)
        rgb = rec.extra["demo"]["objects"][0]["rgb"]
        (x0, y0), (x1, y1) = _centroid(frames[0], rgb), _centroid(frames[-1], rgb)
        if abs(x1 - x0) > abs(y1 - y0):
            seen = "left to right" if x1 > x0 else "right to left"
        else:
            seen = "top to bottom" if y1 > y0 else "bottom to top"
        if rec.problem_type == "multiple choice":
            assert rec.answer == _letter_of(rec, seen)
        else:
            assert seen in rec.answer
        # Reversing the clip flips the answer: the question is frame-order dependent.
        (rx0, _), (rx1, _) = _centroid(frames[::-1][0], rgb), _centroid(frames[::-1][-1], rgb)
        assert (rx1 - rx0) * (x1 - x0) <= 0
        checked += 1
    assert checked >= 2


def test_appearance_order_answers_match_the_pixels(records):
    checked = 0
    for rec in (r for r in records if r.extra["demo"]["kind"] in ("first_appearance", "last_appearance")):
        frames = _frames(rec)
        first_seen = {}
        for obj in rec.extra["demo"]["objects"]:
            first_seen[obj["name"]] = next(t for t, f in enumerate(frames) if _visible(f, obj["rgb"]))
        order = sorted(first_seen, key=first_seen.get)
        assert len(set(first_seen.values())) == len(first_seen), "distinct appearance times"
        target = order[0] if rec.extra["demo"]["kind"] == "first_appearance" else order[-1]
        assert rec.answer == _letter_of(rec, target)
        checked += 1
    assert checked >= 2


def test_count_and_time_span_answers_match_the_pixels(records):
    for rec in records:
        kind = rec.extra["demo"]["kind"]
        if kind == "count":
            frames = _frames(rec)
            circles = [o for o in rec.extra["demo"]["objects"] if o["shape"] == "circle"]
            mask = _mask(frames[len(frames) // 2], circles[0]["rgb"]).astype(np.uint8)
            _, _, stats, _ = cv2.connectedComponentsWithStats(mask)
            n_blobs = int((stats[1:, cv2.CC_STAT_AREA] > 20).sum())  # ignore stray compression pixels
            assert n_blobs == int(rec.answer) == len(circles)
        elif kind in ("duration", "grounding"):
            frames = _frames(rec)
            obj = rec.extra["demo"]["objects"][0]
            visible = [t for t, f in enumerate(frames) if _visible(f, obj["rgb"])]
            assert visible == list(range(visible[0], visible[-1] + 1)), "one contiguous span"
            fps = rec.extra["demo"]["fps"]
            start, end = visible[0] / fps, (visible[-1] + 1) / fps
            if kind == "grounding":
                assert json.loads(rec.answer) == [start, end]
            else:
                assert float(rec.answer) == pytest.approx(end - start)
        elif kind == "ocr":
            frames = _frames(rec)
            white = (frames.min(axis=3) > 200).mean()
            assert white > 0.03, "the word is drawn large"


def test_deterministic_and_idempotent(demo, tmp_path):
    path, _ = demo
    videos = sorted(Path(path).parent.glob("videos/*.mp4"))
    mtimes = [v.stat().st_mtime_ns for v in videos]
    again = build_demo_dataset(Path(path).parent, num_clips=16, seed=3)  # existing clips are reused: mtimes stay
    assert again.read_text() == Path(path).read_text()
    assert [v.stat().st_mtime_ns for v in videos] == mtimes
    # A fresh folder, same arguments: the same annotation file.
    fresh = build_demo_dataset(tmp_path / "fresh", num_clips=4, seed=3)
    assert json.loads(fresh.read_text()) == json.loads(Path(path).read_text())[:4]
    other = build_demo_dataset(tmp_path / "other", num_clips=4, seed=4)
    assert json.loads(other.read_text()) != json.loads(fresh.read_text())


def test_cli(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "rova.data.demo", "--out", str(tmp_path), "--num-clips", "2"],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert Path(result.stdout.strip()) == tmp_path / annotation_name(2)
    assert len(load_records(tmp_path / annotation_name(2))) == 2
    bad = subprocess.run(
        [sys.executable, "-m", "rova.data.demo", "--out", str(tmp_path), "--width", "161"],
        capture_output=True, text=True, timeout=60,
    )
    assert bad.returncode == 2 and "width" in bad.stderr


def test_builds_of_other_sizes_in_one_folder_keep_each_others_annotation_files(tmp_path):
    """A sweep over data.demo_num_clips shares one folder: a 2-clip build must not rewrite the 4-clip file a run of
    the other size is reading (demo.json was one name for every size: the fast tier saw 6 records for 8)."""
    four = build_demo_dataset(tmp_path, num_clips=4, seed=3)
    text = four.read_text()
    two = build_demo_dataset(tmp_path, num_clips=2, seed=3)
    assert two != four and four.read_text() == text and len(json.loads(text)) == 4
    assert json.loads(two.read_text()) == json.loads(text)[:2]  # the same first clips, rendered once
    assert len(list((tmp_path / "videos").glob("*.mp4"))) == 4


def test_data_and_benchmark_demo_paths_name_their_split_and_size():
    from rova.config.compose import load_typed

    def files(*overrides):
        cfg = load_typed(["stage=eval", "data=demo", "benchmark=demo", *overrides])
        return cfg.data.train_file, cfg.benchmark.file

    train, test = files("data.demo_num_clips=8", "benchmark.demo_num_clips=8")
    assert train.endswith("/demo/train/demo-8.json") and test.endswith("/demo/test/demo-8.json")
    assert files("data.demo_num_clips=6")[0].endswith("/demo/train/demo-6.json")
    # the same split and size is the same clips, so one file serves both
    assert len(set(files("data.demo_split=test", "data.demo_num_clips=5", "benchmark.demo_num_clips=5"))) == 1
