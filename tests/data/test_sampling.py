"""Frame sampling and resizing (Qwen2.5-VL rules): config validation and property tests."""

from __future__ import annotations

import math
from dataclasses import asdict

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rova.config.data import FrameSamplingConfig
from rova.data.sampling import (
    frame_pixel_budget,
    num_sampled_frames,
    sample_frame_indices,
    smart_resize,
    target_size,
)
from rova.errors import ConfigError

PX = 28 * 28


def make_cfg(**overrides) -> FrameSamplingConfig:
    values = dict(
        fps=2.0, min_frames=4, max_frames=16, min_pixels=128 * PX, max_pixels=256 * PX, total_pixels=4096 * PX
    )
    values.update(overrides)
    return FrameSamplingConfig(**values)


@st.composite
def configs(draw) -> FrameSamplingConfig:
    min_frames = 2 * draw(st.integers(1, 8))
    max_frames = min_frames + 2 * draw(st.integers(0, 64))
    min_pixels = draw(st.integers(4, 512)) * PX
    max_pixels = min_pixels + draw(st.integers(0, 2048)) * PX
    total_pixels = draw(st.integers(1, 1_000_000)) * PX
    fps = draw(st.floats(0.1, 30.0, allow_nan=False))
    return FrameSamplingConfig(fps, min_frames, max_frames, min_pixels, max_pixels, total_pixels)


# --- config validation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides, key",
    [
        ({"fps": 0}, "data.fps"),
        ({"fps": -1.0}, "data.fps"),
        ({"fps": float("nan")}, "data.fps"),
        ({"min_frames": 0}, "data.min_frames"),
        ({"min_frames": 3}, "data.min_frames"),
        ({"max_frames": 15}, "data.max_frames"),
        ({"min_frames": 8, "max_frames": 4}, "data.max_frames"),
        ({"min_pixels": 0}, "data.min_pixels"),
        ({"max_pixels": -5}, "data.max_pixels"),
        ({"total_pixels": 0}, "data.total_pixels"),
        ({"min_pixels": 300 * PX}, "data.min_pixels"),
        ({"image_factor": 0}, "data.image_factor"),
        ({"max_frames": 16.5}, "data.max_frames"),
        ({"min_frames": True}, "data.min_frames"),
    ],
)
def test_config_rejects_bad_values_naming_the_key(overrides, key):
    with pytest.raises(ConfigError) as info:
        make_cfg(**overrides)
    assert info.value.key == key
    assert str(info.value).startswith(f"{key}: ")


def test_config_is_an_omegaconf_structured_config():
    from omegaconf import OmegaConf

    schema = OmegaConf.structured(FrameSamplingConfig)
    merged = OmegaConf.merge(schema, asdict(make_cfg()))
    cfg = OmegaConf.to_object(merged)
    assert isinstance(cfg, FrameSamplingConfig) and cfg.image_factor == 28
    with pytest.raises(ConfigError, match="data.max_frames"):
        OmegaConf.to_object(OmegaConf.merge(schema, {**asdict(make_cfg()), "max_frames": 2}))


# --- the numbers on known cases -----------------------------------------------------------------


def test_known_cases_match_qwen_vl_utils():
    cfg = make_cfg()
    # 10 s at 24 fps: 20 frames wanted at 2 fps, clamped to 16; true rate 16 / 10 s.
    idx, fps = sample_frame_indices(240, 24.0, cfg)
    assert len(idx) == 16 and fps == pytest.approx(1.6)
    assert idx[0] == 0 and idx[-1] == 239
    # 128 frames at 25 fps (5.12 s): 10.24 -> round to even 10; true rate 10 / 5.12.
    idx, fps = sample_frame_indices(128, 25.0, cfg)
    assert len(idx) == 10 and fps == pytest.approx(10 / 5.12)
    # Short clip: fewer frames than min_frames -> every frame it has, floored to even.
    idx, fps = sample_frame_indices(3, 30.0, cfg)
    assert idx.tolist() == [0, 2] and fps == pytest.approx(2 / 0.1)
    # smart_resize of 360x640 under a 256*28*28 budget: 336x588 (multiples of 28, <= budget).
    assert target_size(360, 640, 16, cfg) == (336, 588)
    # total_pixels lowers the per-frame budget, never below 1.05 * min_pixels.
    assert frame_pixel_budget(16, make_cfg(total_pixels=16 * 64 * PX)) == int(128 * PX * 1.05)


def test_too_few_frames_or_bad_fps_raise():
    cfg = make_cfg()
    for total, fps in [(0, 25.0), (1, 25.0), (100, 0.0), (100, float("inf"))]:
        with pytest.raises(ValueError):
            sample_frame_indices(total, fps, cfg)
    with pytest.raises(ValueError, match="aspect ratio"):
        smart_resize(10, 2500, 28, 100, 10_000)


# --- properties ---------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(cfg=configs(), total=st.integers(2, 100_000), video_fps=st.floats(1.0, 240.0, allow_nan=False))
def test_sample_frame_indices_properties(cfg, total, video_fps):
    idx, sample_fps = sample_frame_indices(total, video_fps, cfg)
    n = len(idx)
    assert n % 2 == 0 and n >= 2
    assert n <= cfg.max_frames and n <= total
    # At least min_frames unless the video itself has fewer frames.
    assert n >= min(cfg.min_frames, total - total % 2)
    assert idx.dtype == np.int64
    assert idx[0] == 0 and idx[-1] == total - 1
    assert np.all(np.diff(idx) > 0), "indices strictly increasing (no frame twice)"
    assert sample_fps == pytest.approx(n / (total / video_fps))
    # Unclamped, the count is the even number nearest duration * fps.
    wanted = total / video_fps * cfg.fps
    if cfg.min_frames <= wanted <= cfg.max_frames and n < total - 1:
        assert abs(n - wanted) <= 1.0 + 1e-9
    assert n == num_sampled_frames(total, video_fps, cfg)


@settings(max_examples=300, deadline=None)
@given(
    cfg=configs(),
    height=st.integers(16, 4000),
    aspect=st.floats(0.2, 5.0, allow_nan=False),
    nframes=st.integers(1, 64).map(lambda k: 2 * k),
)
def test_target_size_properties(cfg, height, aspect, nframes):
    width = max(16, int(height * aspect))
    budget = frame_pixel_budget(nframes, cfg)
    assert budget >= int(cfg.min_pixels * 1.05)
    assert budget <= max(cfg.max_pixels, int(cfg.min_pixels * 1.05))
    h, w = target_size(height, width, nframes, cfg)
    f = cfg.image_factor
    assert h % f == 0 and w % f == 0 and h >= f and w >= f
    rounded = max(f, round(height / f) * f) * max(f, round(width / f) * f)
    if rounded > budget:
        # Scaled down: within the budget unless a side had to be clamped up to one factor.
        assert h * w <= budget or min(h, w) == f
    elif rounded < cfg.min_pixels:
        # Scaled up: at least min_pixels, overshooting by at most one factor step per side.
        assert h * w >= cfg.min_pixels
        scale = math.sqrt(cfg.min_pixels / (height * width))
        assert h <= height * scale + f and w <= width * scale + f
    else:
        assert (h, w) == (max(f, round(height / f) * f), max(f, round(width / f) * f))
    # Aspect ratio kept up to the rounding.
    assert abs(h / w - height / width) <= (height / width) * (f / min(h, w)) * 2 + 1e-9


def test_budget_holds_for_ordinary_videos():
    # The everyday case (landscape video, budgets far apart): strictly within [min, budget].
    cfg = make_cfg()
    for height, width in [(360, 640), (320, 480), (1080, 1920), (120, 160), (720, 1280)]:
        for nframes in (4, 16):
            h, w = target_size(height, width, nframes, cfg)
            assert cfg.min_pixels <= h * w <= frame_pixel_budget(nframes, cfg)
