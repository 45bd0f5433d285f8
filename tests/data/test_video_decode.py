"""Decoding and sampling real clips with decord and PyAV; broken files are skipped and counted."""

from __future__ import annotations

import logging
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

from rova.data.records import VideoQARecord
from rova.config.data import FrameSamplingConfig
from rova.data.sampling import frame_pixel_budget
from rova.data.video import BACKENDS, filter_decodable, probe_video, read_clip, resize_frames, skip_reason_counts
from rova.errors import VideoDecodeError

VIDEOS = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "videos"
# name: (frames, fps, height, width) as documented in shared/data/README.md
REAL = {
    "video_r1_example.mp4": (491, 22.29, 360, 640),
    "tw_grpo_8.mp4": (240, 24.0, 360, 640),
    "tw_grpo_video_12176.mp4": (128, 25.0, 320, 480),
}
needs_real = pytest.mark.skipif(
    not all((VIDEOS / name).is_file() for name in REAL),
    reason=f"real clips not present in {VIDEOS} (shared data folder absent)",
)

PX = 28 * 28
CFG = FrameSamplingConfig(
    fps=2.0, min_frames=4, max_frames=16, min_pixels=32 * PX, max_pixels=256 * PX, total_pixels=2048 * PX
)


@needs_real
@pytest.mark.parametrize("name", sorted(REAL))
def test_real_clip_sampling_both_backends(name):
    total, fps, height, width = REAL[name]
    clips = {backend: read_clip(VIDEOS / name, CFG, backend) for backend in BACKENDS}
    for backend, clip in clips.items():
        n = clip.nframes
        assert n % 2 == 0 and CFG.min_frames <= n <= CFG.max_frames, backend
        assert clip.total_frames == total and clip.source_fps == pytest.approx(fps)
        assert clip.sample_fps == pytest.approx(n / (total / fps)), "true rate: frames / duration"
        assert clip.indices[0] == 0 and clip.indices[-1] == total - 1 and np.all(np.diff(clip.indices) > 0)
        t, h, w, c = clip.frames.shape
        assert (t, c) == (n, 3) and clip.frames.dtype == np.uint8 and clip.frames.flags.c_contiguous
        assert h % 28 == 0 and w % 28 == 0
        assert h * w <= frame_pixel_budget(n, CFG) and h * w >= CFG.min_pixels
        assert abs(h / w - height / width) < 0.1, "aspect ratio kept"
        assert clip.frames.std() > 5, "real picture content, not a blank frame"
    decord_clip, pyav_clip = clips["decord"], clips["pyav"]
    assert decord_clip.frames.shape == pyav_clip.frames.shape
    assert np.array_equal(decord_clip.indices, pyav_clip.indices)
    # Same frames from both decoders (up to decoder rounding).
    diff = np.abs(decord_clip.frames.astype(np.int16) - pyav_clip.frames.astype(np.int16)).mean()
    assert diff < 3.0, diff


@needs_real
def test_total_pixels_budget_limits_frame_size():
    tight = FrameSamplingConfig(
        fps=2.0, min_frames=4, max_frames=16, min_pixels=16 * PX, max_pixels=512 * PX, total_pixels=16 * 40 * PX
    )
    clip = read_clip(VIDEOS / "tw_grpo_8.mp4", tight, "pyav")
    assert clip.nframes == 16
    budget = frame_pixel_budget(16, tight)
    assert budget == 80 * PX  # total / nframes * 2
    assert clip.frames.shape[1] * clip.frames.shape[2] <= budget


@needs_real
def test_probe_reports_without_keeping_frames():
    info = probe_video(VIDEOS / "tw_grpo_video_12176.mp4", CFG, "decord")
    assert (info.total_frames, info.source_height, info.source_width) == (128, 320, 480)
    assert info.nframes == 10 and info.sample_fps == pytest.approx(10 / 5.12)
    assert info.height % 28 == 0 and info.width % 28 == 0


def _faststart_copy(src: Path, dst: Path) -> None:
    """Remux with the index (moov) first: the hard truncation case, decoders can still open it."""
    import av

    with av.open(str(src)) as inp, av.open(str(dst), "w", options={"movflags": "faststart"}) as out:
        in_stream = inp.streams.video[0]
        out_stream = out.add_stream_from_template(in_stream)
        for packet in inp.demux(in_stream):
            if packet.dts is None:
                continue
            packet.stream = out_stream
            out.mux(packet)


def _record(i: int, path: Path) -> VideoQARecord:
    return VideoQARecord(
        problem_id=i, problem="q", data_type="video", problem_type="free-form", options=[],
        solution="<answer>x</answer>", media_path=str(path),
    )


@pytest.fixture(scope="module")
def broken_files(tmp_path_factory):
    """Broken copies of a real clip, plus good ones: (good, good faststart, {name: broken path})."""
    if not (VIDEOS / "tw_grpo_8.mp4").is_file():
        pytest.skip(f"real clips not present in {VIDEOS} (shared data folder absent)")
    d = tmp_path_factory.mktemp("broken")
    good = d / "good.mp4"
    shutil.copy(VIDEOS / "tw_grpo_8.mp4", good)
    data = good.read_bytes()
    fast = d / "fast.mp4"
    _faststart_copy(good, fast)
    fast_data = fast.read_bytes()
    # Padding after a complete file is harmless: decoders ignore it, so must the truncation check.
    (d / "padded.mp4").write_bytes(data + bytes(64) + b"\x01\x02\x03")
    files = {
        "truncated": data[: len(data) // 2],
        "truncated_tail": data[:-1000],
        "truncated_faststart": fast_data[: int(len(fast_data) * 0.6)],
        "zero_bytes": b"",
        "text_file": b"this is not a video, just text with an .mp4 name\n" * 20,
    }
    paths = {}
    for name, payload in files.items():
        paths[name] = d / f"{name}.mp4"
        paths[name].write_bytes(payload)
    paths["missing"] = d / "missing.mp4"
    return good, fast, paths


@pytest.mark.parametrize("backend", BACKENDS)
def test_filter_decodable_skips_and_counts_broken_files(broken_files, backend, caplog):
    good, fast, broken = broken_files
    records = [_record(0, good), _record(1, fast), _record(2, good.with_name("padded.mp4"))]
    records += [_record(i + 3, path) for i, path in enumerate(broken.values())]
    records.append(_record(99, good))  # a second question on the good video
    with caplog.at_level(logging.WARNING, logger="rova.data.video"):
        kept, skipped = filter_decodable(records, CFG, backend)
    assert [r.problem_id for r in kept] == [0, 1, 2, 99], "good files kept, nothing substituted"
    assert len(skipped) == len(broken)
    reasons = {Path(rec.media_path).stem: reason for rec, reason in skipped}
    assert set(reasons) == set(broken)
    for name, reason in reasons.items():
        assert str(broken[name]) in reason, "reason names the path"
    assert "0 bytes" in reasons["zero_bytes"] and "not found" in reasons["missing"]
    for name in ("truncated", "truncated_tail", "truncated_faststart"):
        assert "truncated" in reasons[name], reasons[name]
    assert f"skipped {len(broken)}" in caplog.text
    assert sum(skip_reason_counts(skipped).values()) == len(broken)


@pytest.mark.parametrize("backend", BACKENDS)
def test_decoders_catch_truncation_without_the_box_check(broken_files, backend, tmp_path):
    # A writer that marks its media box "runs to end of file" (size 0) defeats the box check:
    # the decoders themselves must still notice the missing frames.
    _, fast, _ = broken_files
    data = bytearray(fast.read_bytes())
    at = data.find(b"mdat") - 4
    data[at : at + 4] = struct.pack(">I", 0)
    for cut in (len(data) // 2, len(data) - 300):
        path = tmp_path / f"cut{cut}.mp4"
        path.write_bytes(bytes(data[:cut]))
        with pytest.raises(VideoDecodeError) as info:
            read_clip(path, CFG, backend)
        assert str(path) in str(info.value)


def test_read_clip_errors_name_the_path(tmp_path):
    text = tmp_path / "notes.mp4"
    text.write_text("hello")
    for backend in BACKENDS:
        with pytest.raises(VideoDecodeError, match="notes.mp4"):
            read_clip(text, CFG, backend)
    with pytest.raises(ValueError, match="backend"):
        read_clip(text, CFG, "opencv")


def test_decoding_before_torch_is_loaded_leaves_torch_matmuls_working(tmp_path):
    """decord2 dlopens site-packages/nvidia/*/lib/*.so RTLD_GLOBAL at import, libnvblas included: a process that
    decoded before loading torch segfaulted at its first Linear (rova/data/decord_import.py). Fresh process."""
    import subprocess
    import sys

    script = (
        "from rova.config.data import FrameSamplingConfig\n"
        "from rova.data.video import read_clip\n"
        f"clip = read_clip({str(VIDEOS / 'tw_grpo_8.mp4')!r}, FrameSamplingConfig(2.0, 4, 8, 3136, 6272, 50176))\n"
        "import torch\n"
        "out = torch.nn.Linear(64, 64)(torch.randn(128, 64))\n"
        "print('matmul ok', tuple(out.shape), clip.nframes)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                          cwd=Path(__file__).resolve().parents[2])
    assert proc.returncode == 0 and "matmul ok (128, 64)" in proc.stdout, (proc.returncode, proc.stderr[-2000:])


def _sampled_source_frames(name: str, count: int = 8) -> np.ndarray:
    from rova.data.decord_import import decord_module

    decord = decord_module()
    reader = decord.VideoReader(str(VIDEOS / name), ctx=decord.cpu(0), num_threads=1)
    return reader.get_batch(np.linspace(0, len(reader) - 1, count).astype(int).tolist()).asnumpy()


@needs_real
@pytest.mark.parametrize("size", [(224, 420), (336, 588), (532, 952)], ids=["shrink", "shrink-less", "enlarge"])
def test_frames_are_resized_exactly_as_qwen_vl_utils_does(size):
    """qwen-vl-utils (Qwen's and Video-R1's preprocessing) resizes a video's frames with torchvision's
    resize(BICUBIC, antialias=True), which runs the filter in float32 and rounds. rova runs the same filter
    in torch's uint8 fixed-point kernel (5x faster, same bytes on every CPU): it may round differently,
    never by much. cv2's INTER_AREA, used before, was ten times further off (mean 0.5 levels)."""
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms import functional as TF
    import torch

    frames = _sampled_source_frames("tw_grpo_8.mp4")
    ours = resize_frames(frames, *size)
    video = torch.from_numpy(frames).permute(0, 3, 1, 2).contiguous()  # qwen-vl-utils holds [T, C, H, W]
    theirs = TF.resize(video, list(size), interpolation=InterpolationMode.BICUBIC, antialias=True)
    theirs = theirs.permute(0, 2, 3, 1).numpy().astype(np.int16)
    assert ours.shape == (8, *size, 3) and ours.dtype == np.uint8 and ours.flags.c_contiguous
    diff = np.abs(ours.astype(np.int16) - theirs)
    assert diff.mean() < 0.1, diff.mean()
    assert (diff > 1).mean() < 0.01, "beyond a rounding step only where bicubic overshoot is clipped"


@needs_real
def test_read_clip_frames_are_the_resized_source_frames():
    clip = read_clip(VIDEOS / "tw_grpo_8.mp4", CFG, "decord")
    from rova.data.decord_import import decord_module

    decord = decord_module()
    source = decord.VideoReader(str(VIDEOS / "tw_grpo_8.mp4"), ctx=decord.cpu(0)).get_batch(clip.indices.tolist())
    assert np.array_equal(clip.frames, resize_frames(source.asnumpy(), *clip.frames.shape[1:3]))


@needs_real
def test_resized_bytes_are_the_same_on_every_cpu_kernel(tmp_path):
    """Seeded runs replay byte-for-byte on other machines only if the resize does: the portable kernel
    (ATEN_CPU_CAPABILITY=default, what a CPU without AVX2 runs) must give the vectorised kernel's bytes."""
    import os
    import subprocess
    import sys

    frames = _sampled_source_frames("tw_grpo_video_12176.mp4", 4)
    np.save(tmp_path / "frames.npy", frames)
    script = (
        "import sys, numpy as np\n"
        "from rova.data.video import resize_frames\n"
        "frames = np.load(sys.argv[1])\n"
        "np.savez(sys.argv[2], *[resize_frames(frames, h, w) for h, w in [(196, 308), (28, 56), (448, 672)]])\n"
    )
    capabilities = ["default", "avx2"]
    for capability in capabilities:
        env = dict(os.environ, ATEN_CPU_CAPABILITY=capability)
        proc = subprocess.run([sys.executable, "-c", script, str(tmp_path / "frames.npy"),
                               str(tmp_path / f"{capability}.npz")], capture_output=True, text=True, timeout=300,
                              env=env, cwd=Path(__file__).resolve().parents[2])
        assert proc.returncode == 0, proc.stderr[-2000:]
    here = [resize_frames(frames, h, w) for h, w in [(196, 308), (28, 56), (448, 672)]]
    for capability in capabilities:
        saved = np.load(tmp_path / f"{capability}.npz")
        for i, expected in enumerate(here):
            assert np.array_equal(saved[f"arr_{i}"], expected), (capability, i)


def test_resize_frames_refuses_what_is_not_a_uint8_rgb_clip():
    with pytest.raises(ValueError, match="uint8"):
        resize_frames(np.zeros((2, 8, 8, 3), dtype=np.float32), 4, 4)
    with pytest.raises(ValueError, match=r"\[T, H, W, 3\]"):
        resize_frames(np.zeros((8, 8, 3), dtype=np.uint8), 4, 4)
    same = np.arange(2 * 4 * 4 * 3, dtype=np.uint8).reshape(2, 4, 4, 3)
    assert np.array_equal(resize_frames(same, 4, 4), same)


def _scribbled_copy(src: Path, dst: Path) -> Path:
    """The clip with its media bytes (after the 'mdat' header) scribbled over: the boxes are intact, the H.264
    stream is not, so the decoder meets errors in every frame it reads."""
    data = bytearray(src.read_bytes())
    start = data.find(b"mdat") + 8
    body = len(data) - start
    for k in range(start + body // 4, start + 3 * body // 4, 97):
        data[k] = (data[k] * 7 + 13) % 256
    dst.write_bytes(bytes(data))
    return dst


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_corrupt_clip_is_one_reason_not_pages_of_decoder_errors(demo_file, tmp_path, backend, capfd):
    """Issue 22: one corrupt clip printed 440 lines of ffmpeg errors (libav's own stderr, under decord). The decoder
    is quiet; the clip is skipped with one reason, and that reason is a single line without decord's source paths."""
    from rova.data.records import load_records
    from rova.data.video import probe_media

    broken = _scribbled_copy(Path(load_records(demo_file)[0].media_path), tmp_path / "scribbled.mp4")
    capfd.readouterr()
    reason, tokens, _ = probe_media(str(broken), "video", CFG, backend)
    noise = capfd.readouterr()
    assert noise.err == "" and noise.out == "", (noise.err + noise.out)[:2000]
    assert reason is not None and tokens is None
    assert reason.startswith(f"{broken}: ") and "\n" not in reason and "/project/src" not in reason, reason
