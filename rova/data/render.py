"""Writing rendered frames as real H.264 mp4 files (the procedural datasets: rova.data.demo, rova.data.shapes)."""

from __future__ import annotations

import os
import tempfile
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np


def write_mp4(path: Path, frames: np.ndarray, fps: float) -> None:
    """H.264 (libx264, yuv420p) via PyAV, written to a temp file and renamed into place."""
    import av

    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".mp4.tmp", dir=path.parent)
    os.close(fd)
    try:
        with av.open(tmp, mode="w", format="mp4") as container:
            stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
            stream.width, stream.height = frames.shape[2], frames.shape[1]
            stream.pix_fmt = "yuv420p"
            # Near-lossless, few threads: small clips, colours and text stay checkable after decoding.
            stream.options = {"crf": "12", "preset": "veryfast", "threads": "1"}
            for array in frames:
                for packet in stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file normal permissions
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def question_record(index: int, spec: dict[str, Any], video_name: str, data_source: str, task_key: str,
                    task_fields: dict[str, Any]) -> dict[str, Any]:
    """One Video-R1-schema record of a procedural clip: the question of `spec` (problem, problem_type, options,
    think, answer), its clip under ./videos/, and the task's own fields under `task_key`."""
    return {
        "problem_id": index + 1,
        "problem": spec["problem"],
        "data_type": "video",
        "problem_type": spec["problem_type"],
        "options": spec["options"],
        "process": f"<think>{spec['think']}</think>",
        "solution": f"<answer>{spec['answer']}</answer>",
        "path": f"./videos/{video_name}",
        "data_source": data_source,
        task_key: task_fields,
    }
