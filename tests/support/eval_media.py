"""Eval fixtures on real media: MMVU records mapped onto the shared clips, and a frame-folder benchmark."""

from __future__ import annotations

import json
import os
from pathlib import Path

CLIPS = ("video_r1_example.mp4", "tw_grpo_8.mp4", "tw_grpo_video_12176.mp4")


def map_mmvu_media(file: Path, videos: Path, root: Path) -> list[Path]:
    """A media root where the first 3 MMVU records' paths are symlinks to the real clips; returns the clips."""
    records = json.loads(Path(file).read_text(encoding="utf-8"))
    for record, clip in zip(records[:3], CLIPS):
        target = root / record["video"].lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(videos / clip, target)
    return [videos / clip for clip in CLIPS]


def write_frame_folder(frames, folder: Path) -> Path:
    """JPEG frames named frame_1.jpg ... frame_N.jpg (unpadded: only a natural sort orders them)."""
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    for i, frame in enumerate(frames, start=1):
        assert cv2.imwrite(str(folder / f"frame_{i}.jpg"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_JPEG_QUALITY, 95])
    return folder


def frame_folder_benchmark(clip_path: Path, root: Path, fps: float = 6.0) -> Path:
    """A Video-R1-format eval file with two multiple-choice items on one frame folder cut from a real clip."""
    from rova.config.data import FrameSamplingConfig
    from rova.data.video import read_clip

    px = 28 * 28
    extract = FrameSamplingConfig(fps=fps, min_frames=4, max_frames=60, min_pixels=32 * px, max_pixels=256 * px,
                                  total_pixels=60 * 256 * px)
    write_frame_folder(read_clip(clip_path, extract).frames, root / "frames" / "clip")
    records = [
        {"problem_id": i, "problem": "What is shown?", "data_type": "frames", "problem_type": "multiple choice",
         "options": ["A. a table", "B. a road"], "solution": "<answer>A</answer>", "path": "./frames/clip",
         "fps": fps, "task_type": f"task{i % 2}"}
        for i in range(2)
    ]
    file = root / "eval_frames.json"
    file.write_text(json.dumps(records))
    return file
