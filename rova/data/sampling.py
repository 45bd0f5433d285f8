"""Frame sampling and resizing by the Qwen2.5-VL rules (the ones qwen-vl-utils applies to videos).

Pure functions of numbers: which frame indices to decode, the fps those frames really have, and the
size each frame is resized to. Every number comes from `FrameSamplingConfig` (a config value, never a
constant edited by hand). Matching qwen-vl-utils matters: Video-R1 checkpoints were trained on frames
chosen and sized this way, and the processor derives M-RoPE time positions (`second_per_grid_ts`)
from the sampling fps we hand it.
"""

from __future__ import annotations

import math

import numpy as np

from rova.config.data import FRAME_FACTOR, FrameSamplingConfig

# smart_resize refuses absurd aspect ratios (as qwen-vl-utils does).
MAX_ASPECT_RATIO = 200


def _round_by_factor(number: float, factor: int) -> int:
    return round(number / factor) * factor


def _ceil_by_factor(number: float, factor: int) -> int:
    return math.ceil(number / factor) * factor


def _floor_by_factor(number: float, factor: int) -> int:
    return math.floor(number / factor) * factor


def num_sampled_frames(total_frames: int, video_fps: float, cfg: FrameSamplingConfig) -> int:
    """The number of frames to sample: duration * fps, clamped to the bounds, even, at most total_frames."""
    if total_frames < FRAME_FACTOR:
        raise ValueError(f"a video needs at least {FRAME_FACTOR} frames to be sampled, it has {total_frames}")
    if not video_fps > 0 or not math.isfinite(video_fps):
        raise ValueError(f"video fps must be a finite number > 0, got {video_fps!r}")
    nframes = total_frames / video_fps * cfg.fps
    nframes = min(max(nframes, cfg.min_frames), cfg.max_frames)
    nframes = _round_by_factor(nframes, FRAME_FACTOR)
    if nframes > total_frames:
        # Short videos: never sample a frame twice; use every frame we may (an even count).
        nframes = _floor_by_factor(total_frames, FRAME_FACTOR)
    return int(nframes)


def sample_frame_indices(
    total_frames: int, video_fps: float, cfg: FrameSamplingConfig
) -> tuple[np.ndarray, float]:
    """Evenly spaced frame indices (int64, strictly increasing) and the TRUE sampling fps.

    The true fps is nframes / duration: after clamping and rounding it is not cfg.fps, and the
    processor must get the real value or the model's time positions are wrong.
    """
    nframes = num_sampled_frames(total_frames, video_fps, cfg)
    indices = np.linspace(0, total_frames - 1, nframes).round().astype(np.int64)
    duration = total_frames / video_fps
    return indices, nframes / duration


def frame_pixel_budget(nframes: int, cfg: FrameSamplingConfig) -> float:
    """Per-frame pixel budget: max_pixels, lowered so the clip fits total_pixels, never below min_pixels."""
    if nframes <= 0:
        raise ValueError(f"nframes must be > 0, got {nframes}")
    return max(min(cfg.max_pixels, cfg.total_pixels / nframes * FRAME_FACTOR), int(cfg.min_pixels * 1.05))


def smart_resize(height: int, width: int, factor: int, min_pixels: float, max_pixels: float) -> tuple[int, int]:
    """Sides rounded to multiples of `factor`, scaled (aspect kept) into [min_pixels, max_pixels].

    The qwen-vl-utils rule, kept exact for parity with Video-R1 checkpoints. Like the original, the
    bounds are met up to one factor step: the floor/ceil to multiples of `factor` can overshoot a
    bound slightly when min_pixels and max_pixels are close, or when one side is clamped to `factor`.
    """
    if height <= 0 or width <= 0:
        raise ValueError(f"frame size must be positive, got {height}x{width}")
    if max(height, width) / min(height, width) > MAX_ASPECT_RATIO:
        raise ValueError(
            f"aspect ratio must be below {MAX_ASPECT_RATIO}, got {max(height, width) / min(height, width):.1f}"
        )
    h_bar = max(factor, _round_by_factor(height, factor))
    w_bar = max(factor, _round_by_factor(width, factor))
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = max(factor, _floor_by_factor(height / beta, factor))
        w_bar = max(factor, _floor_by_factor(width / beta, factor))
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = _ceil_by_factor(height * beta, factor)
        w_bar = _ceil_by_factor(width * beta, factor)
    return int(h_bar), int(w_bar)


def target_size(height: int, width: int, nframes: int, cfg: FrameSamplingConfig) -> tuple[int, int]:
    """(h, w) each sampled frame is resized to: multiples of cfg.image_factor within the per-frame budget."""
    return smart_resize(height, width, cfg.image_factor, cfg.min_pixels, frame_pixel_budget(nframes, cfg))
