"""When a clip's frames were taken: what the decoder measures and every model family turns into time inputs."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ClipTiming:
    """When the sampled frames of a clip were taken: `sample_fps` (their true rate, T / duration) and, when the
    source is known, each frame's index in the source and the source's frame rate (true times in seconds)."""

    sample_fps: float
    indices: tuple[int, ...] | None = None
    source_fps: float | None = None
    source_frames: int | None = None  # frames in the source video (or frame folder)

    @classmethod
    def of(cls, timing: "ClipTiming | float | None") -> "ClipTiming | None":
        if timing is None or isinstance(timing, ClipTiming):
            return timing
        return cls(float(timing))
