"""The shapes task: every answer recovered from the decoded H.264 pixels, splits disjoint, builds deterministic."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rova.config.data import PROCEDURAL_SPLITS, PROCEDURAL_TASKS, FrameSamplingConfig
from rova.data import shapes
from rova.data.procedural import DEMO_SPLIT_SEEDS, annotation_file, build_procedural
from rova.data.records import load_records
from rova.data.video import read_clip

PX = 28 * 28
# Every source frame at source size (64 x 64: a multiple of Qwen3-VL's factor 32).
ALL_FRAMES = FrameSamplingConfig(fps=1000.0, min_frames=2, max_frames=1000, min_pixels=4 * PX,
                                 max_pixels=16 * PX, total_pixels=10**9, image_factor=32)
PER_KIND = 4


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    path = shapes.build_shapes_dataset(tmp_path_factory.mktemp("shapes"), len(shapes.KINDS) * PER_KIND, "val")
    return load_records(path)


def _frames(record) -> np.ndarray:
    clip = read_clip(record.media_path, ALL_FRAMES, "pyav")
    assert clip.nframes == shapes.NUM_FRAMES and clip.frames.shape[1:3] == (shapes.HEIGHT, shapes.WIDTH)
    return clip.frames.astype(np.int16)


def _mask(frame: np.ndarray, color: str) -> np.ndarray:
    return np.abs(frame - np.array(shapes.COLORS[color], dtype=np.int16)).sum(axis=2) < 80


def _centroid(frame: np.ndarray, color: str) -> np.ndarray:
    ys, xs = np.nonzero(_mask(frame, color))
    assert len(xs) > 10, f"the {color} object is visible"
    return np.array([xs.mean(), ys.mean()])


def _visible(frame: np.ndarray, color: str) -> bool:
    return int(_mask(frame, color).sum()) > 10


def _kind(records, kind: str):
    chosen = [r for r in records if r.extra["shapes"]["kind"] == kind]
    assert len(chosen) == PER_KIND
    return chosen


def _option(record, letter: str) -> str:
    return next(o.partition(". ")[2] for o in record.options if o.startswith(letter + "."))


def _colors(record) -> list[str]:
    return [o["color"] for o in record.extra["shapes"]["objects"]]


def test_schema_and_balanced_kinds(records):
    assert [r.extra["shapes"]["kind"] for r in records[: len(shapes.KINDS)]] == list(shapes.KINDS)
    for rec in records:
        assert rec.process.startswith("<think>") and rec.solution.startswith("<answer>")
        if rec.problem_type == "multiple choice":
            assert len(rec.options) == 4 and rec.answer in "ABCD"
    # Answers are balanced: the 4 moving_color clips name 4 different colours, the flash counts cycle 1-3.
    assert len({r.answer for r in _kind(records, "moving_color")}) == 4
    assert [r.answer for r in _kind(records, "flash_count")][:3] == ["1", "2", "3"]


def test_moving_color_is_the_object_whose_pixels_move(records):
    for rec in _kind(records, "moving_color"):
        frames = _frames(rec)
        moved = {c: float(np.linalg.norm(_centroid(frames[-1], c) - _centroid(frames[0], c))) for c in _colors(rec)}
        mover = max(moved, key=moved.get)
        assert moved[mover] > 20 and sorted(moved.values())[-2] < 2, moved
        assert _option(rec, rec.answer) == mover and f"The {mover} object moves" in rec.process


def test_direction_matches_the_pixels_and_flips_when_reversed(records):
    for rec in _kind(records, "direction"):
        frames = _frames(rec)
        mover = rec.extra["shapes"]["color"]
        dx, dy = _centroid(frames[-1], mover) - _centroid(frames[0], mover)
        seen = ("right" if dx > 0 else "left") if abs(dx) > abs(dy) else ("down" if dy > 0 else "up")
        assert _option(rec, rec.answer) == seen
        rx, ry = _centroid(frames[::-1][-1], mover) - _centroid(frames[::-1][0], mover)
        assert (rx, ry) == pytest.approx((-dx, -dy))  # the answer depends on frame order


def test_flash_count_counts_the_on_periods(records):
    for rec in _kind(records, "flash_count"):
        frames = _frames(rec)
        objects = rec.extra["shapes"]["objects"]
        light = next(o["color"] for o in objects if len(o["visible_frames"]) < shapes.NUM_FRAMES)
        steady = next(o["color"] for o in objects if o["color"] != light)
        on = [_visible(f, light) for f in frames]
        flashes = sum(1 for a, b in zip([False] + on, on) if b and not a)
        assert str(flashes) == rec.answer and all(_visible(f, steady) for f in frames)
        assert all(sum(on[g:g + 2]) in (0, 2) for g in range(0, 16, 2)), "a flash fills whole frame pairs"


def test_first_color_is_the_first_to_appear(records):
    for rec in _kind(records, "first_color"):
        frames = _frames(rec)
        onset = {c: next(t for t, f in enumerate(frames) if _visible(f, c)) for c in _colors(rec)}
        first = min(onset, key=onset.get)
        assert len(set(onset.values())) == 2 and _option(rec, rec.answer) == first
        assert [o / shapes.FPS for o in sorted(onset.values())] == rec.extra["shapes"]["onsets"]


def test_move_span_is_where_the_object_moves(records):
    for rec in _kind(records, "move_span"):
        frames = _frames(rec)
        mover = _colors(rec)[1]
        centres = [_centroid(f, mover) for f in frames]
        moving = [t for t in range(1, 16) if np.linalg.norm(centres[t] - centres[t - 1]) > 0.5]
        start, end = json.loads(rec.answer)
        assert moving and moving[0] - 1 == round(start * shapes.FPS) and min(moving[-1], 15) <= round(end * shapes.FPS)
        assert end - start >= 1.0


def test_size_is_the_width_in_pixels(records):
    for rec in _kind(records, "size"):
        frame = _frames(rec)[0]
        color = _colors(rec)[0]
        xs = np.nonzero(_mask(frame, color).any(axis=0))[0]
        assert abs((xs.max() - xs.min() + 1) - int(rec.answer)) <= 2


def test_splits_are_disjoint_and_builds_deterministic(tmp_path):
    a = shapes.build_shapes_dataset(tmp_path / "a", 6, "train")
    b = shapes.build_shapes_dataset(tmp_path / "b", 6, "train")
    test = shapes.build_shapes_dataset(tmp_path / "t", 6, "test")
    assert Path(a).read_text().replace("/a/", "/b/") == Path(b).read_text()
    for x, y in zip(sorted((tmp_path / "a" / "videos").iterdir()), sorted((tmp_path / "b" / "videos").iterdir())):
        assert x.name == y.name
        assert np.array_equal(read_clip(x, ALL_FRAMES, "pyav").frames, read_clip(y, ALL_FRAMES, "pyav").frames)
    assert not {r["process"] for r in json.loads(Path(a).read_text())} & {r["process"] for r in json.loads(Path(test).read_text())}
    bigger = shapes.build_shapes_dataset(tmp_path / "a", 12, "train")  # extends, keeps the 6-clip file
    assert json.loads(Path(bigger).read_text())[:6] == json.loads(Path(a).read_text())
    assert Path(a).exists() and Path(bigger).name == "shapes-12.json"


def test_the_procedural_registry_agrees_with_the_config():
    assert set(PROCEDURAL_SPLITS) == set(shapes.SPLIT_SEEDS) == set(DEMO_SPLIT_SEEDS)
    for task in PROCEDURAL_TASKS:
        assert annotation_file(task, 5)
    with pytest.raises(ValueError, match="unknown procedural task"):
        build_procedural("nope", "/tmp", 1, "train")
    with pytest.raises(ValueError, match="split"):
        shapes.build_shapes_dataset("/tmp/unused", 1, "dev")
