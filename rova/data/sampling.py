"""Frame sampling and resizing by the Qwen2.5-VL rules (the ones qwen-vl-utils applies to videos).

Pure functions of numbers: which frame indices to decode, the fps those frames really have, and the
size each frame is resized to. Every number comes from `FrameSamplingConfig` (a config value, never a
constant edited by hand). Matching qwen-vl-utils matters: Video-R1 checkpoints were trained on frames
chosen and sized this way, and the processor derives M-RoPE time positions (`second_per_grid_ts`)
from the sampling fps we hand it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from rova.errors import ConfigError

# Qwen2.5-VL merges frames in pairs (temporal_patch_size 2): a frame count must be even.
FRAME_FACTOR = 2
# smart_resize refuses absurd aspect ratios (as qwen-vl-utils does).
MAX_ASPECT_RATIO = 200


@dataclass
class FrameSamplingConfig:
    """How many frames to sample from a video and how large each may be (OmegaConf-compatible).

    fps: target sampling rate; the real rate differs after clamping/rounding (see sample_frame_indices).
    min_frames, max_frames: bounds on the number of sampled frames, both even.
    min_pixels, max_pixels: per-frame pixel bounds; total_pixels: budget for the whole clip.
    image_factor: sides become multiples of this (patch_size * merge_size = 14 * 2 for Qwen2.5-VL).
    """

    fps: float
    min_frames: int
    max_frames: int
    min_pixels: int
    max_pixels: int
    total_pixels: int
    image_factor: int = 28

    def __post_init__(self) -> None:
        fps = self.fps
        if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not math.isfinite(fps) or fps <= 0:
            raise ConfigError("data.fps", f"must be a finite number > 0 (frames sampled per second), got {fps!r}")
        self.fps = float(fps)
        for name in ("min_frames", "max_frames", "min_pixels", "max_pixels", "total_pixels", "image_factor"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigError(f"data.{name}", f"must be an integer, got {value!r}")
            if value <= 0:
                raise ConfigError(f"data.{name}", f"must be > 0, got {value}")
        if self.min_frames < FRAME_FACTOR or self.min_frames % FRAME_FACTOR:
            raise ConfigError(
                "data.min_frames",
                f"must be an even number >= {FRAME_FACTOR} (Qwen2.5-VL groups frames in pairs), got {self.min_frames}",
            )
        if self.max_frames % FRAME_FACTOR:
            raise ConfigError(
                "data.max_frames", f"must be even (Qwen2.5-VL groups frames in pairs), got {self.max_frames}"
            )
        if self.max_frames < self.min_frames:
            raise ConfigError(
                "data.max_frames", f"must be >= data.min_frames ({self.min_frames}), got {self.max_frames}"
            )
        if self.min_pixels > self.max_pixels:
            raise ConfigError(
                "data.min_pixels", f"must be <= data.max_pixels ({self.max_pixels}), got {self.min_pixels}"
            )


SAMPLING_KEYS = ("fps", "min_frames", "max_frames", "min_pixels", "max_pixels", "total_pixels")


def frame_sampling_of(settings, image_factor: int = 28, group: str = "data") -> FrameSamplingConfig:
    """The FrameSamplingConfig of a config section holding the SAMPLING_KEYS (data.*, benchmark.*); errors
    name the keys of that section."""
    try:
        return FrameSamplingConfig(**{key: getattr(settings, key) for key in SAMPLING_KEYS}, image_factor=image_factor)
    except ConfigError as exc:
        if group == "data":
            raise
        # FrameSamplingConfig names data.<key>; this section's keys are <group>.<key>.
        raise ConfigError(exc.key.replace("data.", f"{group}.", 1), exc.problem.replace("data.", f"{group}.")) from None


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
