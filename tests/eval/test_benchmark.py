"""Benchmarks: the `benchmark` config group, Video-R1 eval files as shipped, frame folders, segments, skips."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from omegaconf import OmegaConf

from rova.config.data import FrameSamplingConfig
from rova.data.sampling import sample_frame_indices
from rova.data.video import read_clip, read_frame_folder, resize_frames
from rova.errors import ConfigError, DataError, VideoDecodeError
from rova.eval.benchmark import (
    BenchmarkConfig,
    load_benchmark,
    read_benchmark_items,
    read_item_clip,
)
from tests.conftest import shared_data_or_skip
from tests.support.eval_media import map_mmvu_media, write_frame_folder

PX = 28 * 28
PRESETS = ("demo", "mvbench", "tempcompass", "videomme", "videommmu", "vsibench", "mmvu")
# A small, fast benchmark sampling (the presets' 256 x 28 x 28 is slower to decode and resize on a CPU).
SMALL = dict(min_pixels=32 * PX, max_pixels=64 * PX, total_pixels=1024 * PX)


def _write(path: Path, records: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(records), encoding="utf-8")
    return path


def _rec(pid, media, **extra) -> dict:
    rec = {
        "problem_id": pid,
        "problem": "What happens?",
        "data_type": "video",
        "problem_type": "multiple choice",
        "options": ["A. one", "B. two"],
        "solution": "<answer>A</answer>",
        "path": media,
    }
    rec.update(extra)
    return rec


# --------------------------------------------------------------------------------------------- config


def test_defaults_are_video_r1_eval_settings():
    cfg = BenchmarkConfig(file="x.json")
    s = cfg.frame_sampling()
    assert (s.fps, s.min_frames, s.max_frames, s.max_pixels) == (2.0, 4, 16, 256 * PX)
    assert s.total_pixels >= s.max_frames * s.max_pixels  # the clip budget never binds at 16 frames
    assert cfg.frame_sampling(image_factor=32).image_factor == 32


@pytest.mark.parametrize(
    "kwargs, key",
    [
        (dict(name=""), "benchmark.name"),
        (dict(name="a/b"), "benchmark.name"),
        (dict(file=""), "benchmark.file"),
        (dict(media_root=" "), "benchmark.media_root"),
        (dict(max_frames=15), "benchmark.max_frames"),
        (dict(min_pixels=10**9), "benchmark.min_pixels"),
        (dict(fps=0), "benchmark.fps"),
        (dict(frame_folder_fps=0.0), "benchmark.frame_folder_fps"),
        (dict(max_items=0), "benchmark.max_items"),
        (dict(subtask_keys=["a", "a"]), "benchmark.subtask_keys"),
        (dict(subtask_keys=["a|"]), "benchmark.subtask_keys"),
    ],
)
def test_config_errors_name_the_benchmark_key(kwargs, key):
    with pytest.raises(ConfigError) as err:
        BenchmarkConfig(**{"file": "x.json", **kwargs})
    assert err.value.key == key
    assert "data." not in str(err.value)


def _composed_benchmark(name: str) -> tuple[BenchmarkConfig, dict]:
    """The composed preset as a BenchmarkConfig: through Hydra and the schema once the group is wired into
    conf/config.yaml and RootConfig, else the preset YAML merged onto the composed root (same interpolations)."""
    from rova.config.schema import RootConfig
    from rova.config.compose import compose, conf_dir, validate_typed

    if "benchmark" in OmegaConf.structured(RootConfig):
        wired = "benchmark" in compose([])
        cfg = compose([f"benchmark={name}" if wired else f"+benchmark={name}"])
        typed = validate_typed(cfg)
        return typed.benchmark, OmegaConf.to_container(OmegaConf.structured(typed.benchmark))
    cfg = compose([])
    OmegaConf.set_struct(cfg, False)
    cfg.benchmark = OmegaConf.load(conf_dir() / "benchmark" / f"{name}.yaml")
    node = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False)["benchmark"]
    merged = OmegaConf.merge(OmegaConf.structured(BenchmarkConfig), node)
    return OmegaConf.to_object(merged), node


@pytest.mark.parametrize("name", PRESETS)
def test_every_preset_composes(name, monkeypatch):
    monkeypatch.delenv("ROVA_EVAL_DATA", raising=False)
    monkeypatch.delenv("ROVA_EVAL_MEDIA", raising=False)
    cfg, node = _composed_benchmark(name)
    assert isinstance(cfg, BenchmarkConfig) and cfg.name == name
    assert cfg.file.endswith("demo/test/demo-24.json" if name == "demo" else f"/data/eval/eval_{name}.json")
    sampling = cfg.frame_sampling()
    if name == "demo":
        assert cfg.build_demo and cfg.max_frames == 8 and cfg.max_pixels == 6272
    else:
        assert not cfg.build_demo
        assert (sampling.fps, sampling.max_frames, sampling.max_pixels) == (2.0, 16, 256 * PX)
    if name == "videomme":
        assert cfg.subtask_keys == ["duration", "domain"]
    if name == "mmvu":
        assert cfg.media_root == "/data/eval"  # its paths are root-relative ("/MMVU/videos/...")


def test_preset_paths_follow_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("ROVA_EVAL_DATA", str(tmp_path))
    monkeypatch.delenv("ROVA_EVAL_MEDIA", raising=False)
    cfg, _ = _composed_benchmark("mmvu")
    assert cfg.file == f"{tmp_path}/eval_mmvu.json" and cfg.media_root == str(tmp_path)
    cfg, _ = _composed_benchmark("vsibench")
    assert cfg.media_root is None  # the eval file's folder
    monkeypatch.setenv("ROVA_EVAL_MEDIA", "/media/eval")
    cfg, _ = _composed_benchmark("mmvu")
    assert cfg.media_root == "/media/eval"


# --------------------------------------------------------------------------------------------- real MMVU


def test_real_mmvu_file_parses_and_is_refused_with_every_item_missing(tmp_path):
    file = shared_data_or_skip("benchmarks", "eval_mmvu.json")
    cfg = BenchmarkConfig(
        name="mmvu", file=str(file), media_root=str(tmp_path), subtask_keys=["original_question_type"]
    )
    items, num_records = read_benchmark_items(cfg)
    assert num_records == 625 and len(items) == 625
    assert len({item.item_id for item in items}) == 625
    first = items[0]
    assert first.item_id == "mmvu/1" and first.media_kind == "video"
    assert first.media_path == str(tmp_path / "MMVU" / "videos" / "Chemistry" / "0.mp4")
    assert first.record.extra["original_question_type"] == "multiple-choice"
    assert first.subtasks == {"original_question_type": "multiple-choice"}
    assert first.to_dict()["original_question_type"] == "multiple-choice"

    # No clip is there: nothing to score, so the benchmark is refused, naming the file and why.
    with pytest.raises(DataError) as err:
        load_benchmark(cfg, probe=False)
    assert str(err.value) == (f"benchmark {file} has no usable item: 625 record(s); 625 skipped: 625 file not found; "
                              f"the first: {first.media_path}: file not found")


@pytest.fixture
def mmvu_mapped(tmp_path):
    """A media root where the first 3 MMVU records' paths are symlinks to the real clips."""
    file = shared_data_or_skip("benchmarks", "eval_mmvu.json")
    videos = shared_data_or_skip("videos")
    root = tmp_path / "media"
    return file, root, map_mmvu_media(file, videos, root)


def test_real_mmvu_items_with_media_decode_and_the_rest_are_missing(mmvu_mapped):
    file, root, clips = mmvu_mapped
    cfg = BenchmarkConfig(name="mmvu", file=str(file), media_root=str(root), **SMALL)
    data = load_benchmark(cfg, probe=True)
    assert [item.index for item in data.items] == [0, 1, 2]
    assert len(data.skipped) == 622 and data.skip_counts() == {"file not found": 622}
    assert data.num_considered == 625
    sampling = cfg.frame_sampling()
    # README facts: 491 frames at 22.29 fps (22 s), 240 at 24 fps (10 s), 128 at 25 fps (5.12 s): 2 fps
    # gives 44, 20 and 10 frames, clamped to max_frames 16.
    for item, clip, nframes in zip(data.items, clips, (16, 16, 10)):
        frames, timing, is_image = read_item_clip(item, cfg)
        fps = timing.sample_fps
        reference = read_clip(clip, sampling)  # the training reader, same sampling rules
        assert not is_image and frames.dtype == np.uint8 and frames.ndim == 4 and frames.shape[3] == 3
        assert frames.shape == reference.frames.shape and fps == pytest.approx(reference.sample_fps)
        assert frames.shape[0] == nframes
        assert frames.shape[1] * frames.shape[2] <= sampling.max_pixels
        np.testing.assert_array_equal(frames, reference.frames)


# --------------------------------------------------------------------------------------------- frame folders


@pytest.fixture(scope="module")
def frame_folder(tmp_path_factory):
    """60 frames of tw_grpo_8.mp4 (240 frames at 24 fps, 10 s) sampled at 6 fps, written as JPEGs
    named frame_1.jpg ... frame_60.jpg (unpadded: only a natural sort orders them)."""
    clip_path = shared_data_or_skip("videos", "tw_grpo_8.mp4")
    extract = FrameSamplingConfig(fps=6.0, min_frames=4, max_frames=60, min_pixels=32 * PX,
                                  max_pixels=256 * PX, total_pixels=60 * 256 * PX)
    clip = read_clip(clip_path, extract)
    assert clip.nframes == 60 and clip.sample_fps == pytest.approx(6.0)
    root = tmp_path_factory.mktemp("frames")
    folder = write_frame_folder(clip.frames, root / "clips" / "tw_grpo_8")
    (folder / "notes.txt").write_text("not a frame")
    return root, folder, clip


def test_frame_folder_reads_at_the_stated_fps_in_natural_order(frame_folder):
    root, _, source = frame_folder
    file = _write(root / "eval_frames.json", [
        _rec(1, "./clips/tw_grpo_8", data_type="frame", fps=6),
        _rec(2, "./clips/tw_grpo_8"),  # data_type video, but the path is a folder: read as frames
    ])
    cfg = BenchmarkConfig(name="frames", file=str(file), frame_folder_fps=6.0, **SMALL)
    data = load_benchmark(cfg)
    assert not data.skipped and [item.media_kind for item in data.items] == ["frames", "frames"]
    assert [item.frames_fps for item in data.items] == [6.0, 6.0]
    frames, timing, is_image = read_item_clip(data.items[0], cfg)
    fps = timing.sample_fps
    # 10 s at 2 fps = 20, clamped to 16 frames: the true rate is 16 / 10 s, as for the video itself.
    assert frames.shape[0] == 16 and fps == pytest.approx(1.6) and not is_image
    video = read_clip(shared_data_or_skip("videos", "tw_grpo_8.mp4"), cfg.frame_sampling())
    assert fps == pytest.approx(video.sample_fps) and frames.shape == video.frames.shape
    indices, _ = sample_frame_indices(60, 6.0, cfg.frame_sampling())
    h, w = frames.shape[1:3]
    for frame, index in zip(frames, indices):
        expected = resize_frames(source.frames[index][None], h, w)[0].astype(int)  # the JPEG frames differ a little
        other = resize_frames(source.frames[(index + 30) % 60][None], h, w)[0].astype(int)
        assert np.abs(frame.astype(int) - expected).mean() < 6
        assert np.abs(frame.astype(int) - expected).mean() < np.abs(frame.astype(int) - other).mean()


def test_frame_folder_without_fps_is_skipped_with_the_reason(frame_folder):
    root, _, _ = frame_folder
    file = _write(root / "eval_nofps.json", [_rec(1, "./clips/tw_grpo_8", data_type="frames"),
                                             _rec(2, "./clips/tw_grpo_8", data_type="frames", fps=6)])
    data = load_benchmark(BenchmarkConfig(name="nofps", file=str(file), **SMALL))
    assert [item.index for item in data.items] == [1] and len(data.skipped) == 1
    assert "benchmark.frame_folder_fps" in data.skipped[0].reason


def test_segment_picks_frames_from_that_interval(frame_folder):
    root, folder, _ = frame_folder
    video = shared_data_or_skip("videos", "tw_grpo_8.mp4")
    shutil.copy(video, root / "clip8.mp4")
    file = _write(root / "eval_segments.json", [
        _rec(1, "./clip8.mp4", start=2.0, end=6.0),
        _rec(2, "./clips/tw_grpo_8", data_type="frame", fps=6, start="2", end="6"),
        _rec(3, "./clip8.mp4", start=30, end=40),  # after the 10 s video ends
        _rec(4, "./clip8.mp4", start=None, end=None),  # null: the whole video
    ])
    cfg = BenchmarkConfig(name="seg", file=str(file), **SMALL)
    data = load_benchmark(cfg)
    assert [item.index for item in data.items] == [0, 1, 3]
    assert len(data.skipped) == 1 and "segment starts at 30 s" in data.skipped[0].reason
    seg_video, seg_frames, whole = data.items
    assert seg_video.segment == (2.0, 6.0) and whole.segment is None
    sampling = cfg.frame_sampling()
    for backend in ("decord", "pyav"):
        clip = read_clip(video, sampling, backend, segment=(2.0, 6.0))
        # 24 fps: the segment is frames 48..144; 4 s at 2 fps = 8 frames, spread over exactly that span.
        assert clip.indices[0] == 48 and clip.indices[-1] == 144 and len(clip.indices) == 8
        assert clip.sample_fps == pytest.approx(8 / (97 / 24))
        frames, timing, _ = read_item_clip(seg_video, cfg, backend)
        fps = timing.sample_fps
        np.testing.assert_array_equal(frames, clip.frames)
        assert fps == pytest.approx(clip.sample_fps)
    folder_clip = read_frame_folder(folder, sampling, 6.0, segment=(2.0, 6.0))
    assert folder_clip.indices[0] == 12 and folder_clip.indices[-1] == 36 and folder_clip.nframes == 8
    frames, _, _ = read_item_clip(seg_frames, cfg)
    np.testing.assert_array_equal(frames, folder_clip.frames)
    # The segment's first frame is the whole video's frame at 2 s, not its first frame.
    full = read_clip(video, FrameSamplingConfig(24.0, 4, 240, 32 * PX, 64 * PX, 240 * 64 * PX), "pyav")
    seg = read_clip(video, sampling, "pyav", segment=(2.0, 6.0)).frames[0].astype(int)
    assert np.abs(seg - full.frames[48]).mean() < np.abs(seg - full.frames[0]).mean()


def test_bad_segment_is_a_data_error(tmp_path):
    file = _write(tmp_path / "eval.json", [_rec(1, "./a.mp4", start=5, end=2)])
    with pytest.raises(DataError, match="record 0.*'end'"):
        read_benchmark_items(BenchmarkConfig(file=str(file)))
    file = _write(tmp_path / "eval2.json", [_rec(1, "./a.mp4", start="soon")])
    with pytest.raises(DataError, match="'start'"):
        read_benchmark_items(BenchmarkConfig(file=str(file)))
    # segments=false: start/end mean something else in this file (kept as extra keys only)
    items, _ = read_benchmark_items(BenchmarkConfig(file=str(file), segments=False))
    assert items[0].segment is None and items[0].record.extra["start"] == "soon"


# --------------------------------------------------------------------------------------------- skips


def test_broken_media_is_skipped_counted_and_listed(tmp_path):
    videos = shared_data_or_skip("videos")
    good = tmp_path / "good.mp4"
    shutil.copy(videos / "tw_grpo_video_12176.mp4", good)
    data_bytes = good.read_bytes()
    (tmp_path / "truncated.mp4").write_bytes(data_bytes[: len(data_bytes) // 2])
    (tmp_path / "text.mp4").write_text("not a video")
    (tmp_path / "empty.webm").write_bytes(b"")
    (tmp_path / "empty_folder").mkdir()
    file = _write(tmp_path / "eval.json", [
        _rec(1, "./good.mp4"),
        _rec(2, "./truncated.mp4"),
        _rec(3, "./text.mp4"),
        _rec(4, "./missing.mp4"),
        _rec(5, "./empty.webm"),
        _rec(6, "./empty_folder", data_type="frame", fps=3),
        _rec(7, "./good.mp4"),  # a second question on the good clip
    ])
    cfg = BenchmarkConfig(name="broken", file=str(file), **SMALL)
    for backend in ("decord", "pyav"):
        data = load_benchmark(cfg, backend=backend)
        assert [item.item_id for item in data.items] == ["broken/1", "broken/7"]
        skipped = {skip.item_id: skip for skip in data.skipped}
        assert sorted(skipped) == ["broken/2", "broken/3", "broken/4", "broken/5", "broken/6"]
        assert "truncated" in skipped["broken/2"].reason and "file not found" in skipped["broken/4"].reason
        assert "empty" in skipped["broken/5"].reason and "no frame images" in skipped["broken/6"].reason
        assert all(skip.reason.startswith(skip.path) for skip in data.skipped)
        assert sum(data.skip_counts().values()) == 5
        with pytest.raises(VideoDecodeError):
            read_item_clip(load_benchmark(cfg, probe=False).items[1], cfg, backend)  # not probed: raises on read
    quick = load_benchmark(cfg, probe=False)
    assert {s.item_id for s in quick.skipped} == {"broken/4", "broken/5", "broken/6"} and not quick.probed


def test_parallel_probe_agrees(tmp_path):
    videos = shared_data_or_skip("videos")
    for name in ("tw_grpo_8.mp4", "tw_grpo_video_12176.mp4"):
        shutil.copy(videos / name, tmp_path / name)
    (tmp_path / "bad.mp4").write_text("junk")
    file = _write(tmp_path / "eval.json", [_rec(i, f"./{n}") for i, n in
                                           enumerate(["tw_grpo_8.mp4", "bad.mp4", "tw_grpo_video_12176.mp4"])])
    cfg = BenchmarkConfig(name="par", file=str(file), **SMALL)
    serial, parallel = load_benchmark(cfg), load_benchmark(cfg, workers=2)
    assert [i.item_id for i in serial.items] == [i.item_id for i in parallel.items] == ["par/0", "par/2"]
    assert [s.reason for s in serial.skipped] == [s.reason for s in parallel.skipped]


def _tiny_mp4(path: Path, n: int = 8, fps: float = 4.0) -> Path:
    """A real H.264 clip of n frames (2 s at 4 fps), each frame a different grey."""
    from rova.data.render import write_mp4

    path.parent.mkdir(parents=True, exist_ok=True)
    write_mp4(path, np.stack([np.full((96, 128, 3), 20 + 25 * i, np.uint8) for i in range(n)]), fps)
    return path


def test_frame_record_whose_path_is_a_video_file_is_decoded_as_a_video(tmp_path):
    # MVBench's TVQA items: data_type "frame", but the path people hold is an .mp4 (the frames pre-encoded).
    clip = _tiny_mp4(tmp_path / "tvqa" / "s01e01.mp4")
    write_frame_folder(np.stack([np.full((96, 128, 3), 100, np.uint8)] * 6), tmp_path / "folder")
    file = _write(tmp_path / "eval_mvbench.json", [
        _rec(1, "./tvqa/s01e01.mp4", data_type="frame", fps=3),
        _rec(2, "./folder", data_type="frame", fps=3),  # a real frame folder: still read as one
        _rec(3, "./tvqa/s01e01.mp4"),
    ])
    cfg = BenchmarkConfig(name="mvbench", file=str(file), **SMALL)
    data = load_benchmark(cfg)
    assert not data.skipped, [s.reason for s in data.skipped]
    assert [(i.declared_kind, i.media_kind) for i in data.items] == [("frames", "video"), ("frames", "frames"),
                                                                     ("video", "video")]
    tvqa = data.items[0]
    assert tvqa.frames_fps is None and tvqa.to_dict()["declared_kind"] == "frames"
    frames, timing, is_image = read_item_clip(tvqa, cfg)
    reference = read_clip(clip, cfg.frame_sampling())
    assert not is_image and frames.shape[0] == 4 and timing.sample_fps == pytest.approx(reference.sample_fps)
    np.testing.assert_array_equal(frames, reference.frames)
    overrides = [{"declared": "frames", "read_as": "video", "items": 1}]
    assert data.kind_overrides() == overrides and data.summary()["media_kind_overrides"] == overrides

    # The count reaches results.json and report.md.
    from types import SimpleNamespace

    from rova.config.eval import EvalConfig
    from rova.config.reward import RewardConfig
    from rova.eval.runner import write_results

    run = tmp_path / "run"
    run.mkdir()
    stub = SimpleNamespace(benchmark=cfg, eval=EvalConfig(), model=SimpleNamespace(path="m"), reward=RewardConfig())
    write_results(stub, run, [], data.skipped, {}, data.bad_records, data.kind_overrides())
    assert json.loads((run / "results.json").read_text())["media_kind_overrides"] == overrides
    assert ("1 item(s) declared as frame folders were video files and were decoded as videos."
            in (run / "report.md").read_text())
    # An exported copy says what its new file is: a video, its frame rate its own.
    from rova.eval.export import _exported_record

    exported = _exported_record(json.loads(file.read_text())[0], tvqa, "./videos/x.mp4",
                                {"seed": 0, "clip_sha1": "-"}, "fog@1")
    assert exported["data_type"] == "video" and "fps" not in exported
    assert exported["rova_export"]["source"]["data_type"] == "frame"


def test_a_benchmark_with_no_record_is_refused(tmp_path):
    file = _write(tmp_path / "eval_empty.json", [])
    with pytest.raises(DataError) as err:
        load_benchmark(BenchmarkConfig(name="empty", file=str(file)), probe=False)
    assert str(err.value) == f"benchmark {file} has no usable item: 0 record(s)"


def test_a_benchmark_whose_every_media_is_skipped_is_refused(tmp_path):
    for name in ("a.mp4", "b.mp4"):
        (tmp_path / name).write_bytes(bytes(range(256)) * 8)  # garbage, not a video
    file = _write(tmp_path / "eval_broken.json", [_rec(1, "./a.mp4"), _rec(2, "./b.mp4"), _rec(3, "./gone.mp4")])
    cfg = BenchmarkConfig(name="broken", file=str(file), **SMALL)
    with pytest.raises(DataError) as err:
        load_benchmark(cfg)
    message = str(err.value)
    assert message.startswith(f"benchmark {file} has no usable item: 3 record(s); 3 skipped: "
                              "2 cannot open with decord, 1 file not found; the first: ")
    assert str(tmp_path / "a.mp4") in message
    with pytest.raises(DataError, match="1 skipped: 1 file not found"):  # unprobed: only the missing file is known
        load_benchmark(BenchmarkConfig(name="gone", file=str(_write(tmp_path / "e2.json", [_rec(3, "./gone.mp4")]))),
                       probe=False)


# --------------------------------------------------------------------------------------------- file variations


def test_eval_file_variations(tmp_path):
    clip = tmp_path / "v" / "a.mp4"
    clip.parent.mkdir()
    clip.write_bytes(b"x")  # not opened: probe=False
    image = tmp_path / "img.png"
    cv2.imwrite(str(image), np.full((50, 80, 3), 200, np.uint8))
    records = [
        {k: v for k, v in _rec(0, "./v/a.mp4", task_type="action_sequence").items() if k != "problem_id"},
        _rec(7, "", video="./v/a.mp4", problem_type="multiple-choice", question_type="route_plan", duration=None),
        _rec(7, "./v/a.mp4", problem="another question", original_question_type="object_counting"),
        _rec(9, "./img.png", data_type="Image", problem_type="numerical", options=None,
             solution="<answer>3</answer>", meta={"kind": "count"}),
    ]
    file = _write(tmp_path / "eval.json", records)
    cfg = BenchmarkConfig(name="var", file=str(file), subtask_keys=["task_type", "question_type|original_question_type",
                                                                    "meta.kind", "duration"])
    data = load_benchmark(cfg, probe=False)
    ids = [item.item_id for item in data.items]
    assert ids[0] == "var/#0" and len(set(ids)) == 4 and all(i.startswith("var/7-") for i in ids[1:3])
    assert data.items[0].subtasks == {"task_type": "action_sequence"}
    assert data.items[1].problem_type == "multiple choice"
    assert data.items[1].media_path == str(clip)
    assert data.items[1].subtasks == {"question_type|original_question_type": "route_plan"}
    assert data.items[2].subtasks == {"question_type|original_question_type": "object_counting"}
    # The spelling each record carries, for the report's column name (keys without spellings record none).
    assert [item.subtask_matched for item in data.items[:3]] == [
        {}, {"question_type|original_question_type": "question_type"},
        {"question_type|original_question_type": "original_question_type"}]
    assert data.items[3].media_kind == "image" and data.items[3].subtasks == {"meta.kind": "count"}
    assert data.subtask_coverage()["duration"] == 0
    frames, timing, is_image = read_item_clip(data.items[3], cfg)
    fps = timing.sample_fps
    assert is_image and fps == 1.0 and frames.shape[0] == 1 and frames.dtype == np.uint8
    # Resumable: the same file gives the same ids.
    assert [i.item_id for i in load_benchmark(cfg, probe=False).items] == ids
    # max_items: the first N records of the file.
    limited = load_benchmark(BenchmarkConfig(name="var", file=str(file), max_items=2), probe=False)
    assert limited.num_records == 4 and [i.index for i in limited.items] == [0, 1]


@pytest.mark.parametrize(
    "change, match",
    [
        ({"data_type": "audio"}, "data_type"),
        ({"problem_type": "essay"}, "problem_type"),
        ({"path": None}, "path"),
    ],
)
def test_malformed_records_are_rejected(tmp_path, change, match):
    file = _write(tmp_path / "eval.json", [{**_rec(1, "./a.mp4"), **change}])
    with pytest.raises(DataError, match=match):
        read_benchmark_items(BenchmarkConfig(file=str(file)))


def test_demo_benchmark_is_built_held_out_and_reads(tmp_path, demo_file):
    file = tmp_path / "demo" / "test" / "demo-8.json"
    cfg = BenchmarkConfig(name="demo", file=str(file), build_demo=True, demo_num_clips=8, min_pixels=3136,
                          max_frames=8, max_pixels=6272, total_pixels=50176, subtask_keys=["demo.kind"])
    data = load_benchmark(cfg, backend="pyav")
    assert len(data) == 8 and not data.skipped and data.items[0].benchmark == "demo"
    assert data.items[0].subtasks["demo.kind"] == "direction"
    training = {Path(r["path"]).name for r in json.loads(demo_file.read_text())}
    assert not training & {Path(item.media_path).name for item in data.items}  # other clips than data=demo's
    assert load_benchmark(cfg, probe=False).items[0].media_path == data.items[0].media_path  # rebuilt alike
    frames, timing, is_image = read_item_clip(data.items[0], cfg, "pyav")
    fps = timing.sample_fps
    assert frames.shape[0] == 6 and fps == pytest.approx(2.0) and not is_image  # 3 s at 2 fps
