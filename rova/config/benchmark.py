"""The `benchmark.*` settings: one evaluation benchmark (conf/benchmark/*.yaml are deltas over the defaults)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

from rova.config.checks import _choice
from rova.config.data import PROCEDURAL_SPLITS, PROCEDURAL_TASKS, FrameSamplingConfig, frame_sampling_of
from rova.errors import ConfigError

# Video-R1 evaluates through qwen-vl-utils' fetch_video: fps 2 clamped to [4, 16] frames, 256 x 28 x 28
# pixels per frame at most, VIDEO_MIN_PIXELS (128 x 28 x 28) at least, and VIDEO_TOTAL_PIXELS
# (128000 x 28 x 28 x 0.9) for the whole clip, a budget that never binds at these frame counts.
PX = 28 * 28


@dataclass
class BenchmarkConfig:
    """One evaluation benchmark: its eval file, media root, frame sampling and sub-task keys.

    The defaults are Video-R1's evaluation settings; conf/benchmark/*.yaml are deltas over them.
    """

    name: str = "custom"                      # names the items (item_id = "<name>/<problem_id>") and results
    file: str = "???"                         # a Video-R1-format eval .json / .jsonl
    media_root: Optional[str] = None          # null = the file's folder
    fps: float = 2.0
    min_frames: int = 4
    max_frames: int = 16                      # Video-R1 reports 16 (also 32 and 64)
    min_pixels: int = 128 * PX                # qwen-vl-utils VIDEO_MIN_PIXELS
    max_pixels: int = 256 * PX                # 256 x 28 x 28 per frame at eval (128 x 28 x 28 in training)
    total_pixels: int = 90316800              # qwen-vl-utils VIDEO_TOTAL_PIXELS (int(128000 * 28 * 28 * 0.9))
    # Record keys that carry sub-tasks (aggregation groups): "key", "a.b" (nested), "a|b" (first present).
    subtask_keys: list[str] = field(default_factory=list)
    frame_folder_fps: Optional[float] = None  # fps of frame-folder clips whose record states none
    segments: bool = True                     # sample inside a record's start/end (seconds) when present
    max_items: Optional[int] = None           # the first N records of the file (smoke runs)
    build_demo: bool = False                  # render the procedural clips (demo_task, demo_split) into file's folder on first use
    demo_task: str = "demo"                   # demo or shapes (rova.data.procedural)
    demo_split: str = "test"                  # held out from training (data.demo_split is train)
    demo_num_clips: int = 24

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip() or "/" in self.name:
            raise ConfigError("benchmark.name", f"must be a non-empty name without '/', got {self.name!r}")
        # "???" (MISSING) is reported by OmegaConf when the config is instantiated; only reject empty values.
        if not self.file:
            raise ConfigError("benchmark.file", "required: a Video-R1-format eval .json or .jsonl file")
        if self.media_root is not None and not str(self.media_root).strip():
            raise ConfigError("benchmark.media_root", "must be a folder or null (null = the eval file's folder)")
        keys = list(self.subtask_keys)
        if not all(isinstance(k, str) and all(p.strip() for p in k.replace("|", ".").split(".")) for k in keys):
            raise ConfigError("benchmark.subtask_keys", f"must be a list of record keys, got {keys!r}")
        if len(set(keys)) != len(keys):
            raise ConfigError("benchmark.subtask_keys", f"lists a key twice: {keys!r}")
        fps = self.frame_folder_fps
        if fps is not None and (isinstance(fps, bool) or not isinstance(fps, (int, float))
                                or not math.isfinite(fps) or fps <= 0):
            raise ConfigError("benchmark.frame_folder_fps", f"must be null or a number > 0, got {fps!r}")
        if self.max_items is not None and (isinstance(self.max_items, bool) or self.max_items <= 0):
            raise ConfigError("benchmark.max_items", f"must be null or > 0, got {self.max_items!r}")
        _choice("benchmark.demo_task", self.demo_task, PROCEDURAL_TASKS)
        _choice("benchmark.demo_split", self.demo_split, PROCEDURAL_SPLITS)
        if self.demo_num_clips <= 0:
            raise ConfigError("benchmark.demo_num_clips", f"must be > 0, got {self.demo_num_clips}")
        self.frame_sampling()  # validates fps, frame and pixel bounds

    def frame_sampling(self, image_factor: int = 28) -> FrameSamplingConfig:
        return frame_sampling_of(self, image_factor, group="benchmark")
