"""A record's media decoded as the model sees it: the sampled frames of a video (or an image) and their timing."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rova.config.data import FrameSamplingConfig
from rova.data.video import read_clip, read_image
from rova.models.families.base import ClipTiming


@dataclass
class View:
    """One view of a prompt's clip. Every view of a clip carries the CLEAN clip's timing: shuffling and corruption
    change what the frames show, never their time labels (rova/models/families/base.py)."""

    frames: np.ndarray          # uint8 [T, H, W, 3]
    timing: ClipTiming          # when the (clean) sampled frames were taken; a float is read as the sampling fps
    is_image: bool
    record: dict | None = None  # corruption record (replayable) or shuffle permutation

    def __post_init__(self) -> None:
        self.timing = ClipTiming.of(self.timing)

    @property
    def sample_fps(self) -> float:
        return self.timing.sample_fps


# data.blank_video: every frame of every clip becomes this one flat grey (no colour, no motion, nothing to read).
BLANK_LEVEL = 128


def blank(frames: np.ndarray) -> np.ndarray:
    """The control of data.blank_video: the same shape and timing, every pixel one flat grey."""
    return np.full_like(frames, BLANK_LEVEL)


def read_view(path: str, data_type: str | None, sampling: FrameSamplingConfig, backend: str,
              blank_video: bool = False) -> View:
    """The clean view of one media file: an image (data_type "image") as one frame, else the video's sampled clip;
    flat grey frames of the same shape with `blank_video` (a control run that must not learn from the video)."""
    if data_type == "image":
        frames = read_image(path, sampling)
        return View(blank(frames) if blank_video else frames, 1.0, True)
    clip = read_clip(path, sampling, backend=backend)
    return View(blank(clip.frames) if blank_video else clip.frames, clip.timing, False)
