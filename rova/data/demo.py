"""A small, verifiable demo dataset in the Video-R1 schema: rendered clips, real H.264 mp4 files.

Every clip is drawn procedurally (coloured shapes that move, appear and disappear; a word shown
large), so every answer is known exactly and can be checked against the decoded frames. All six
problem types are covered, including frame-order-dependent multiple choice (which way a ball moves,
which object appears first/last): reversing or shuffling the frames changes the right answer.

    uv run python -m rova.data.demo --out DIR

Deterministic for a seed; re-running with the same arguments reuses the existing mp4 files (their
names carry a hash of everything that determines their content) and rewrites the same JSON.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from rova.data.render import question_record, write_mp4 as _write_mp4
from rova.utils.io import atomic_write_json

# Bump when rendering changes, so stale clips are not reused under the same names.
GENERATOR_VERSION = 1
DATA_SOURCE = "rova-demo"


def annotation_name(num_clips: int) -> str:
    """The annotation file of `num_clips` clips: its own name, so a build of another size never rewrites it (runs
    and sweeps of several data.demo_num_clips share one folder and its clips)."""
    return f"demo-{num_clips}.json"


COLORS: dict[str, tuple[int, int, int]] = {  # RGB, far apart so H.264 chroma loss keeps them apart
    "red": (220, 40, 40),
    "green": (40, 200, 60),
    "blue": (50, 90, 235),
    "yellow": (240, 220, 40),
    "magenta": (215, 50, 215),
    "cyan": (40, 215, 225),
}
SHAPES = ("circle", "square", "triangle")
DIRECTIONS = ("left to right", "right to left", "top to bottom", "bottom to top")
WORDS = ("ROBUST", "VIDEO", "RAIN", "NIGHT", "FOCUS", "CLEAR", "SHAKE", "FRAME", "LIGHT", "STORM", "BLUR", "TRACK")
KINDS = ("direction", "first_appearance", "count", "ocr", "motion_caption", "duration", "grounding", "last_appearance")

# Visibility boundaries sit on this grid (seconds) so answers read like 1.0 / 2.5.
TIME_STEP = 0.5


@dataclass
class _Obj:
    shape: str
    color: str
    size: int  # radius / half side, pixels
    first: int  # visible frames: first <= t < last
    last: int
    start: tuple[float, float]  # centre (x, y) at `first`
    end: tuple[float, float]  # centre at `last - 1`

    @property
    def name(self) -> str:
        return f"{self.color} {self.shape}"

    def center(self, t: int) -> tuple[float, float]:
        span = max(self.last - 1 - self.first, 1)
        a = min(max((t - self.first) / span, 0.0), 1.0)
        return (self.start[0] + (self.end[0] - self.start[0]) * a, self.start[1] + (self.end[1] - self.start[1]) * a)

    def meta(self, fps: float) -> dict[str, Any]:
        return {
            "name": self.name,
            "shape": self.shape,
            "color": self.color,
            "rgb": list(COLORS[self.color]),
            "frames": [self.first, self.last],
            "seconds": [_sec(self.first / fps), _sec(self.last / fps)],
            "start_xy": [round(v, 1) for v in self.start],
            "end_xy": [round(v, 1) for v in self.end],
        }


def _sec(x: float) -> float:
    return round(float(x), 3)


def _fmt(x: float) -> str:
    """1 -> "1.0", 2.5 -> "2.5", 0.125 -> "0.125"."""
    text = f"{round(float(x), 3):g}"
    return text if "." in text or "e" in text else text + ".0"


def _letters(n: int) -> list[str]:
    return [chr(ord("A") + i) for i in range(n)]


def _draw(frame: np.ndarray, obj: _Obj, t: int) -> None:
    x, y = obj.center(t)
    cx, cy, s = int(round(x)), int(round(y)), obj.size
    color = COLORS[obj.color]
    if obj.shape == "circle":
        cv2.circle(frame, (cx, cy), s, color, thickness=-1, lineType=cv2.LINE_AA)
    elif obj.shape == "square":
        cv2.rectangle(frame, (cx - s, cy - s), (cx + s, cy + s), color, thickness=-1)
    else:
        pts = np.array([[cx, cy - s], [cx - s, cy + s], [cx + s, cy + s]], dtype=np.int32)
        cv2.fillPoly(frame, [pts], color, lineType=cv2.LINE_AA)


def _background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    tint = rng.integers(0, 25, size=3)
    ramp = np.linspace(25, 70, height, dtype=np.float32)[:, None, None]
    bg = np.broadcast_to(ramp + tint[None, None, :], (height, width, 3))
    return np.clip(bg, 0, 255).astype(np.uint8)


def _put_word(frame: np.ndarray, word: str) -> None:
    h, w = frame.shape[:2]
    font, thickness = cv2.FONT_HERSHEY_SIMPLEX, max(2, round(min(w, h) / 40))
    (tw, th), _ = cv2.getTextSize(word, font, 1.0, thickness)
    scale = min(0.85 * w / tw, 0.45 * h / th)
    (tw, th), _ = cv2.getTextSize(word, font, scale, thickness)
    org = ((w - tw) // 2, (h + th) // 2)
    cv2.putText(frame, word, org, font, scale, (0, 0, 0), thickness + 3, cv2.LINE_AA)
    cv2.putText(frame, word, org, font, scale, (255, 255, 255), thickness, cv2.LINE_AA)


def _render(bg: np.ndarray, objects: list[_Obj], n_frames: int, word: str | None = None) -> np.ndarray:
    frames = np.empty((n_frames,) + bg.shape, dtype=np.uint8)
    for t in range(n_frames):
        frame = bg.copy()
        for obj in objects:
            if obj.first <= t < obj.last:
                _draw(frame, obj, t)
        if word:
            _put_word(frame, word)
        frames[t] = frame
    return frames


class _Scene:
    """Random choices for one clip, all from one seeded Generator."""

    def __init__(self, rng: np.random.Generator, width: int, height: int, fps: float, n_frames: int, turn: int):
        self.rng, self.w, self.h, self.fps, self.n = rng, width, height, fps, n_frames
        self.turn = turn  # how many clips of this kind came before: used to balance answers
        self.size = max(4, round(min(width, height) * 0.09))
        self.margin = self.size + 2

    def colors(self, k: int) -> list[str]:
        return [str(c) for c in self.rng.permutation(list(COLORS))[:k]]

    def shape(self) -> str:
        return str(self.rng.choice(SHAPES))

    def free_spots(self, k: int) -> list[tuple[float, float]]:
        """k centres on a coarse grid, far enough apart that shapes never touch."""
        step = 2 * self.size + 6
        xs = np.arange(self.margin, self.w - self.margin + 1, step)
        ys = np.arange(self.margin, self.h - self.margin + 1, step)
        cells = [(float(x), float(y)) for y in ys for x in xs]
        if len(cells) < k:
            raise ValueError(f"frame {self.w}x{self.h} too small for {k} objects")
        picks = self.rng.choice(len(cells), size=k, replace=False)
        return [cells[i] for i in picks]

    def grid_frames(self, lo: float, hi: float) -> list[int]:
        """Frame numbers of the TIME_STEP grid points in [lo, hi] seconds (unique)."""
        times = np.arange(0.0, self.n / self.fps + 1e-9, TIME_STEP)
        frames = sorted({int(round(t * self.fps)) for t in times if lo - 1e-9 <= t <= hi + 1e-9})
        return [f for f in frames if 0 <= f <= self.n]

    def path(self, direction: str) -> tuple[tuple[float, float], tuple[float, float]]:
        m, w, h = self.margin, self.w, self.h
        across = float(self.rng.uniform(0.3, 0.7))
        if direction in ("left to right", "right to left"):
            y = across * h
            a, b = (m, y), (w - m, y)
        else:
            x = across * w
            a, b = (x, m), (x, h - m)
        return (a, b) if direction in ("left to right", "top to bottom") else (b, a)


def _mc(options: list[str], answer: str, rng: np.random.Generator) -> tuple[list[str], str]:
    order = [options[i] for i in rng.permutation(len(options))]
    letters = _letters(len(order))
    return [f"{letter}. {text}" for letter, text in zip(letters, order)], letters[order.index(answer)]


def _direction(sc: _Scene) -> dict[str, Any]:
    # Directions rotate over clips of a kind (balanced answers); the letter is still shuffled.
    color, direction = sc.colors(1)[0], DIRECTIONS[sc.turn % len(DIRECTIONS)]
    start, end = sc.path(direction)
    ball = _Obj("circle", color, sc.size, 0, sc.n, start, end)
    options, letter = _mc(list(DIRECTIONS), direction, sc.rng)
    a, b = direction.split(" to ")
    return {
        "objects": [ball],
        "problem_type": "multiple choice",
        "problem": f"Which way does the {color} ball move?",
        "options": options,
        "answer": letter,
        "think": (
            f"Let me track the {color} ball. In the first frames it is near the {a} side of the frame, and "
            f"in the last frames it is near the {b} side. So it moves from {direction}: option {letter}."
        ),
        "meta": {"direction": direction},
    }


def _appearance(sc: _Scene, which: str) -> dict[str, Any]:
    colors = sc.colors(4)
    slots = sc.grid_frames(0.0, sc.n / sc.fps - 1.0)
    starts = sorted(int(v) for v in sc.rng.choice(slots, size=3, replace=False))
    spots = sc.free_spots(3)
    objs = [
        _Obj(sc.shape(), colors[i], sc.size, starts[i], sc.n, spots[i], spots[i]) for i in range(3)
    ]
    order = [int(i) for i in sc.rng.permutation(3)]  # which object takes which start time
    objs = [objs[i] for i in order]
    for obj, first in zip(objs, starts):
        obj.first = first
    distractor = f"{colors[3]} {sc.shape()}"
    target = objs[0] if which == "first" else objs[-1]
    options, letter = _mc([o.name for o in objs] + [distractor], target.name, sc.rng)
    timeline = ", ".join(f"the {o.name} at {_fmt(o.first / sc.fps)} s" for o in objs)
    return {
        "objects": objs,
        "problem_type": "multiple choice",
        "problem": f"Which object appears {which} in the video?",
        "options": options,
        "answer": letter,
        "think": (
            f"Let me watch when each object shows up: {timeline}. The {distractor} never appears. "
            f"So the {target.name} appears {which}: option {letter}."
        ),
        "meta": {"order": [o.name for o in objs]},
    }


def _count(sc: _Scene) -> dict[str, Any]:
    n_circles, n_other = int(sc.rng.integers(1, 6)), int(sc.rng.integers(0, 3))
    colors = sc.colors(2)
    spots = sc.free_spots(n_circles + n_other)
    objs = [_Obj("circle", colors[0], sc.size, 0, sc.n, p, p) for p in spots[:n_circles]]
    objs += [_Obj("square", colors[1], sc.size, 0, sc.n, p, p) for p in spots[n_circles:]]
    plural = "s" if n_circles != 1 else ""
    other = f" and {n_other} {colors[1]} square{'s' if n_other != 1 else ''}, which do not count" if n_other else ""
    return {
        "objects": objs,
        "problem_type": "numerical",
        "problem": "How many circles are in the video?",
        "options": [],
        "answer": str(n_circles),
        "think": (
            f"Let me count the circles: there are {n_circles} {colors[0]} circle{plural}{other}. "
            f"The answer is {n_circles}."
        ),
        "meta": {"circles": n_circles, "squares": n_other},
    }


def _ocr(sc: _Scene) -> dict[str, Any]:
    word = str(sc.rng.choice(WORDS))
    color = sc.colors(1)[0]
    start, end = sc.path(str(sc.rng.choice(DIRECTIONS)))
    objs = [_Obj(sc.shape(), color, sc.size, 0, sc.n, start, end)]
    return {
        "objects": objs,
        "word": word,
        "problem_type": "OCR",
        "problem": "What word is written in large letters in the video?",
        "options": [],
        "answer": word,
        "think": f"The frames show one word in large white letters: {word}.",
        "meta": {"word": word},
    }


def _motion_caption(sc: _Scene) -> dict[str, Any]:
    spec = _direction(sc)
    ball, direction = spec["objects"][0], spec["meta"]["direction"]
    a, b = direction.split(" to ")
    sentence = f"The {ball.color} ball moves from {direction}."
    return {
        "objects": [ball],
        "problem_type": "free-form",
        "problem": f"Describe in one sentence how the {ball.color} ball moves.",
        "options": [],
        "answer": sentence,
        "think": f"The {ball.color} ball starts on the {a} side and ends on the {b} side. {sentence}",
        "meta": {"direction": direction},
    }


def _visible_span(sc: _Scene) -> _Obj:
    duration = sc.n / sc.fps
    first = int(sc.rng.choice(sc.grid_frames(TIME_STEP, duration / 2)))
    lasts = [f for f in sc.grid_frames(0.0, duration - TIME_STEP) if f >= first + round(TIME_STEP * sc.fps)]
    last = int(sc.rng.choice(lasts))
    color = sc.colors(1)[0]
    spot = sc.free_spots(1)[0]
    return _Obj(sc.shape(), color, sc.size, first, last, spot, spot)


def _duration(sc: _Scene) -> dict[str, Any]:
    obj = _visible_span(sc)
    t0, t1 = obj.first / sc.fps, obj.last / sc.fps
    return {
        "objects": [obj],
        "problem_type": "regression",
        "problem": f"For how many seconds is the {obj.name} visible?",
        "options": [],
        "answer": _fmt(t1 - t0),
        "think": (
            f"The {obj.name} appears at {_fmt(t0)} s and disappears at {_fmt(t1)} s, "
            f"so it is visible for {_fmt(t1 - t0)} seconds."
        ),
        "meta": {},
    }


def _grounding(sc: _Scene) -> dict[str, Any]:
    obj = _visible_span(sc)
    t0, t1 = obj.first / sc.fps, obj.last / sc.fps
    return {
        "objects": [obj],
        "problem_type": "grounding",
        "problem": f"During which time span is the {obj.name} visible?",
        "options": [],
        "answer": f"[{_fmt(t0)}, {_fmt(t1)}]",
        "think": f"The {obj.name} is absent at first, appears at {_fmt(t0)} s and is gone from {_fmt(t1)} s on.",
        "meta": {},
    }


_BUILDERS = {
    "direction": _direction,
    "first_appearance": lambda sc: _appearance(sc, "first"),
    "count": _count,
    "ocr": _ocr,
    "motion_caption": _motion_caption,
    "duration": _duration,
    "grounding": _grounding,
    "last_appearance": lambda sc: _appearance(sc, "last"),
}


def _validate(num_clips: int, width: int, height: int, fps: float, seconds: float) -> None:
    if num_clips < 1:
        raise ValueError(f"num_clips must be >= 1, got {num_clips}")
    if width % 2 or height % 2 or min(width, height) < 64:
        raise ValueError(f"width and height must be even and >= 64 (H.264 yuv420p), got {width}x{height}")
    if fps < 2:
        raise ValueError(f"fps must be >= 2, got {fps}")
    if seconds < 2:
        raise ValueError(f"seconds must be >= 2 (time-span questions need room), got {seconds}")


def build_demo_dataset(
    out_dir: str | os.PathLike,
    num_clips: int = 24,
    seed: int = 0,
    width: int = 160,
    height: int = 120,
    fps: float = 8,
    seconds: float = 3,
) -> Path:
    """Write `num_clips` clips (cycling through all question kinds) and their annotation file.

    Returns the path of the Video-R1-schema JSON (media under `path`, "./videos/<name>.mp4").
    Clip i depends only on (seed, i, width, height, fps, seconds), not on num_clips.
    """
    _validate(num_clips, width, height, fps, seconds)
    # Same numbers, same names: 8 and 8.0 (Python call vs CLI) must hash alike.
    fps, seconds = float(fps), float(seconds)
    out = Path(out_dir)
    videos = out / "videos"
    videos.mkdir(parents=True, exist_ok=True)
    n_frames = int(round(seconds * fps))
    records = []
    for i in range(num_clips):
        kind = KINDS[i % len(KINDS)]
        rng = np.random.default_rng([seed, i, GENERATOR_VERSION])
        scene = _Scene(rng, width, height, fps, n_frames, turn=seed + i // len(KINDS))
        background = _background(rng, width, height)
        spec = _BUILDERS[kind](scene)
        key = json.dumps([GENERATOR_VERSION, seed, i, width, height, fps, seconds])
        name = f"{i:04d}_{kind}_{hashlib.sha1(key.encode()).hexdigest()[:10]}.mp4"
        if not (videos / name).is_file() or (videos / name).stat().st_size == 0:
            _write_mp4(videos / name, _render(background, spec["objects"], n_frames, spec.get("word")), fps)
        records.append(question_record(i, spec, name, DATA_SOURCE, "demo", {
            "kind": kind,
            "seed": seed,
            "fps": fps,
            "num_frames": n_frames,
            "width": width,
            "height": height,
            "objects": [o.meta(fps) for o in spec["objects"]],
            **spec["meta"],
        }))
    return atomic_write_json(out / annotation_name(num_clips), records)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="output folder (demo-<num clips>.json + videos/)")
    parser.add_argument("--num-clips", type=int, default=24)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--width", type=int, default=160)
    parser.add_argument("--height", type=int, default=120)
    parser.add_argument("--fps", type=float, default=8)
    parser.add_argument("--seconds", type=float, default=3)
    args = parser.parse_args(argv)
    try:
        path = build_demo_dataset(
            args.out, args.num_clips, args.seed, args.width, args.height, args.fps, args.seconds
        )
    except ValueError as exc:
        parser.error(str(exc))
    print(path)


if __name__ == "__main__":
    main()
