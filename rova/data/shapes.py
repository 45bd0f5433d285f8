"""`shapes`: a procedural video task a small model can learn on a CPU, with questions that need the video and time.

Every clip is 4 s of 64 x 64 H.264 at 4 fps (16 frames): one or two coloured shapes (16 pixels wide) on a dark background, one of
which moves, flashes, appears or simply is there. Six question kinds, each one problem type of the Video-R1
schema, cycled over the clips (clip i asks kind i % 6) with balanced answers:

| kind | problem type | question | needs |
|---|---|---|---|
| moving_color | multiple choice (4) | the colour of the object that moves (the other stands still) | time |
| direction | multiple choice (4) | which way the moving object goes (left, right, up, down) | time |
| flash_count | numerical (1-3) | how many times a light flashes (a second object stays lit) | time |
| first_color | multiple choice (4) | the colour of the first of two objects to appear (order) | time |
| move_span | grounding (IoU) | the time span in which the object moves (it stands still before and after) | time |
| size | regression (MRA) | how many pixels wide the object is | the video |

Multiple-choice options are listed in one fixed order per kind (colours: red, green, blue, yellow), as in
benchmarks with a fixed answer vocabulary, so the letter names the answer and a small model does not also
have to learn to look the answer up among shuffled options. Time is on a 0.5 s grid: one frame pair, which
is one temporal patch of Qwen2.5-VL and Qwen3-VL, so a flash or a start never straddles two patches.
Each clip ships a short rationale written from its ground truth (`process`), for SFT: it names the colour of
the object the question is about in every kind, so every sample teaches the model to read colours.

Splits come from seeds (`SPLIT_SEEDS`): train, val and test never share a clip.

    uv run python -m rova.data.shapes --out DIR --split test --num-clips 120
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np

from rova.data.render import question_record, write_mp4
from rova.utils.io import atomic_write_json

# Bump when rendering or wording changes, so stale clips are not reused under the same names.
GENERATOR_VERSION = 1
DATA_SOURCE = "rova-shapes"
SPLIT_SEEDS = {"train": 0, "val": 1, "test": 2}
KINDS = ("moving_color", "direction", "flash_count", "first_color", "move_span", "size")

WIDTH = HEIGHT = 64
FPS = 4.0
NUM_FRAMES = 16
GROUP = 2  # frames per temporal patch: every event starts and ends on a group boundary (0.5 s)
COLORS: dict[str, tuple[int, int, int]] = {  # RGB, far apart in hue and kept apart by H.264's chroma
    "red": (225, 40, 40),
    "green": (40, 205, 60),
    "blue": (60, 100, 245),
    "yellow": (245, 225, 40),
}
COLOR_NAMES = tuple(COLORS)
SHAPES = ("circle", "square", "triangle")
DIRECTIONS = ("left", "right", "up", "down")
HALF = 10  # half the width of every object but the one `size` asks about
SIZES = tuple(range(8, 42, 2))  # widths (pixels) the `size` kind draws from
FLASH_COUNTS = (1, 2, 3)

Point = tuple[float, float]


def annotation_name(num_clips: int) -> str:
    """The annotation file of `num_clips` clips: its own name, so builds of other sizes never rewrite it."""
    return f"shapes-{num_clips}.json"


def _fmt(seconds: float) -> str:
    return f"{seconds:.1f}"


def _options(names: tuple[str, ...]) -> list[str]:
    return [f"{chr(ord('A') + i)}. {name}" for i, name in enumerate(names)]


def _letter(names: tuple[str, ...], name: str) -> str:
    return chr(ord("A") + names.index(name))


class _Obj:
    """One shape: where it is at frame t (linear motion between two frames) and in which frames it is visible."""

    def __init__(self, shape: str, color: str, half: int, start: Point, end: Point | None = None,
                 moving: tuple[int, int] = (0, NUM_FRAMES - 1), visible: Callable[[int], bool] = lambda t: True):
        self.shape, self.color, self.half = shape, color, half
        self.start, self.end = start, end if end is not None else start
        self.moving, self.visible = moving, visible

    def center(self, t: int) -> Point:
        first, last = self.moving
        a = min(max((t - first) / max(last - first, 1), 0.0), 1.0)
        return (self.start[0] + (self.end[0] - self.start[0]) * a, self.start[1] + (self.end[1] - self.start[1]) * a)

    def draw(self, frame: np.ndarray, t: int) -> None:
        if not self.visible(t):
            return
        x, y = self.center(t)
        cx, cy, s, rgb = int(round(x)), int(round(y)), self.half, COLORS[self.color]
        if self.shape == "circle":
            cv2.circle(frame, (cx, cy), s, rgb, thickness=-1, lineType=cv2.LINE_AA)
        elif self.shape == "square":
            cv2.rectangle(frame, (cx - s, cy - s), (cx + s - 1, cy + s - 1), rgb, thickness=-1)
        else:
            points = np.array([[cx, cy - s], [cx - s, cy + s - 1], [cx + s - 1, cy + s - 1]], dtype=np.int32)
            cv2.fillPoly(frame, [points], rgb, lineType=cv2.LINE_AA)

    def meta(self) -> dict[str, Any]:
        return {"shape": self.shape, "color": self.color, "width": 2 * self.half,
                "start_xy": [round(v, 1) for v in self.start], "end_xy": [round(v, 1) for v in self.end],
                "moving_frames": list(self.moving),
                "visible_frames": [t for t in range(NUM_FRAMES) if self.visible(t)]}


class _Layout:
    """Seeded placement: a moving object's track in one half of the frame, still objects in the other."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.margin = HALF + 2

    def shape(self) -> str:
        return str(self.rng.choice(SHAPES))

    def colors(self, first: str | None, k: int) -> list[str]:
        rest = [c for c in COLOR_NAMES if c != first]
        picked = [str(c) for c in self.rng.permutation(rest)]
        return ([first] if first else []) + picked[: k - (1 if first else 0)]

    def track(self, direction: str, span: float = 0.75) -> tuple[Point, Point, str]:
        """Start and end of a straight move in `direction` across `span` of the frame, and which half it uses."""
        m, top_half = self.margin, bool(self.rng.integers(2))
        lo, hi = m, WIDTH - m
        travel = span * (hi - lo)
        offset = float(self.rng.uniform(0, (hi - lo) - travel))
        a, b = lo + offset, lo + offset + travel
        # The track keeps clear of the still objects' band (still_spots) in the other half.
        across = float(self.rng.uniform(m, HEIGHT / 2 - 6)) if top_half else float(self.rng.uniform(HEIGHT / 2 + 6, HEIGHT - m))
        if direction in ("left", "right"):
            start, end, half = (a, across), (b, across), "top" if top_half else "bottom"
        else:
            start, end, half = (across, a), (across, b), "left" if top_half else "right"
        if direction in ("left", "up"):
            start, end = end, start
        return start, end, half

    def still_spots(self, k: int, avoid: str) -> list[Point]:
        """k spots in the half away from `avoid` (top/bottom/left/right), far enough apart not to touch."""
        step = 2 * HALF + 4
        along = np.arange(self.margin, WIDTH - self.margin + 1, step, dtype=float)
        centre = {"top": HEIGHT * 0.8, "bottom": HEIGHT * 0.2, "left": WIDTH * 0.8, "right": WIDTH * 0.2}[avoid]
        jitter = self.rng.uniform(-2, 2, size=k)
        picks = self.rng.choice(len(along), size=k, replace=False)
        if avoid in ("top", "bottom"):
            return [(float(along[p]), centre + float(j)) for p, j in zip(picks, jitter)]
        return [(centre + float(j), float(along[p])) for p, j in zip(picks, jitter)]

    def anywhere(self, half: int) -> Point:
        return (float(self.rng.uniform(half + 1, WIDTH - half - 1)), float(self.rng.uniform(half + 1, HEIGHT - half - 1)))


def _mover_and_still(lay: _Layout, mover: str, still: str, direction: str) -> list[_Obj]:
    """A still object and an object that moves in `direction` over the whole clip, on a track clear of it."""
    start, end, half = lay.track(direction)
    return [_Obj(lay.shape(), still, HALF, lay.still_spots(1, half)[0]), _Obj(lay.shape(), mover, HALF, start, end)]


def _seconds(frame: int) -> float:
    return frame / FPS


def _moving_color(lay: _Layout, turn: int) -> dict[str, Any]:
    target = COLOR_NAMES[turn % len(COLOR_NAMES)]
    other = lay.colors(target, 2)[1]
    direction = str(lay.rng.choice(DIRECTIONS))
    objs = _mover_and_still(lay, target, other, direction)
    return {
        "objects": objs, "problem_type": "multiple choice", "options": _options(COLOR_NAMES),
        "problem": "Two objects are shown and one of them moves. What colour is the object that moves?",
        "answer": _letter(COLOR_NAMES, target),
        "think": f"The {target} object moves {direction}.",
        "meta": {"color": target, "direction": direction},
    }


def _direction(lay: _Layout, turn: int) -> dict[str, Any]:
    direction = DIRECTIONS[turn % len(DIRECTIONS)]
    mover, other = lay.colors(None, 2)
    objs = _mover_and_still(lay, mover, other, direction)
    begin = {"left": "right", "right": "left", "up": "bottom", "down": "top"}[direction]
    finish = {"left": "left", "right": "right", "up": "top", "down": "bottom"}[direction]
    return {
        "objects": objs, "problem_type": "multiple choice", "options": _options(DIRECTIONS),
        "problem": "One object moves and one stands still. In which direction does the moving object go?",
        "answer": _letter(DIRECTIONS, direction),
        "think": f"The {mover} object goes from the {begin} to the {finish}: it moves {direction}.",
        "meta": {"direction": direction, "color": mover},
    }


def _flash_groups(rng: np.random.Generator, k: int) -> list[int]:
    """k frame pairs out of NUM_FRAMES / GROUP, no two adjacent (a flash is on, then off, then on)."""
    groups = NUM_FRAMES // GROUP
    while True:
        picked = sorted(int(g) for g in rng.choice(groups, size=k, replace=False))
        if all(b - a >= 2 for a, b in zip(picked, picked[1:])):
            return picked


def _flash_count(lay: _Layout, turn: int) -> dict[str, Any]:
    k = FLASH_COUNTS[turn % len(FLASH_COUNTS)]
    light, steady = lay.colors(None, 2)
    groups = _flash_groups(lay.rng, k)
    on = {g * GROUP + i for g in groups for i in range(GROUP)}
    spot_light, spot_steady = lay.still_spots(2, str(lay.rng.choice(["top", "bottom"])))
    objs = [_Obj(lay.shape(), steady, HALF, spot_steady), _Obj("circle", light, HALF, spot_light, visible=on.__contains__)]
    times = [_fmt(_seconds(g * GROUP)) for g in groups]
    listed = times[0] if k == 1 else ", ".join(times[:-1]) + " and " + times[-1]
    return {
        "objects": objs, "problem_type": "numerical", "options": [],
        "problem": "One light flashes on and off while another object stays lit. How many times does the light flash?",
        "answer": str(k),
        "think": f"The {light} light is on at {listed} s: {k} flash{'es' if k > 1 else ''}.",
        "meta": {"flashes": k, "flash_seconds": [_seconds(g * GROUP) for g in groups]},
    }


def _first_color(lay: _Layout, turn: int) -> dict[str, Any]:
    first = COLOR_NAMES[turn % len(COLOR_NAMES)]
    colors = lay.colors(first, 2)
    groups = NUM_FRAMES // GROUP
    g1 = int(lay.rng.integers(0, 4))
    g2 = int(lay.rng.integers(g1 + 2, groups - 1))
    spots = lay.still_spots(2, str(lay.rng.choice(["top", "bottom", "left", "right"])))
    onsets = (g1 * GROUP, g2 * GROUP)
    objs = [_Obj(lay.shape(), c, HALF, p, visible=lambda t, f=f: t >= f) for c, p, f in zip(colors, spots, onsets)]
    t1, t2 = (_fmt(_seconds(f)) for f in onsets)
    return {
        "objects": objs, "problem_type": "multiple choice", "options": _options(COLOR_NAMES),
        "problem": "Two objects appear one after the other. What colour is the object that appears first?",
        "answer": _letter(COLOR_NAMES, first),
        "think": f"The {first} object appears at {t1} s, the {colors[1]} one at {t2} s.",
        "meta": {"color": first, "onsets": [_seconds(f) for f in onsets]},
    }


def _move_span(lay: _Layout, turn: int) -> dict[str, Any]:
    groups = NUM_FRAMES // GROUP
    g0 = int(lay.rng.integers(0, 4))
    g1 = int(lay.rng.integers(g0 + 2, min(g0 + 6, groups) + 1))  # moves for 1.0 to 3.0 s, may run to the end
    direction = str(lay.rng.choice(DIRECTIONS))
    start, end, half = lay.track(direction, span=0.6)
    mover, other = lay.colors(None, 2)
    frames = (g0 * GROUP, min(g1 * GROUP, NUM_FRAMES - 1))
    objs = [_Obj(lay.shape(), other, HALF, lay.still_spots(1, half)[0]),
            _Obj(lay.shape(), mover, HALF, start, end, moving=frames)]
    t0, t1 = _fmt(_seconds(g0 * GROUP)), _fmt(_seconds(g1 * GROUP))
    return {
        "objects": objs, "problem_type": "grounding", "options": [],
        "problem": "One object stands still, then moves, then may stop again. During which time span does it move?",
        "answer": f"[{t0}, {t1}]",
        "think": f"The {mover} object moves {direction} from {t0} s to {t1} s.",
        "meta": {"span": [_seconds(g0 * GROUP), _seconds(g1 * GROUP)], "direction": direction},
    }


def _size(lay: _Layout, turn: int) -> dict[str, Any]:
    width = SIZES[int(lay.rng.integers(len(SIZES)))]
    shape, color = lay.shape(), lay.colors(None, 1)[0]
    obj = _Obj(shape, color, width // 2, lay.anywhere(width // 2))
    return {
        "objects": [obj], "problem_type": "regression", "options": [],
        "problem": f"The frame is {WIDTH} pixels wide. How many pixels wide is the object?",
        "answer": str(width),
        "think": f"The {color} {shape} is about {width} pixels wide.",
        "meta": {"width": width},
    }


_BUILDERS: dict[str, Callable[[_Layout, int], dict[str, Any]]] = {
    "moving_color": _moving_color, "direction": _direction, "flash_count": _flash_count,
    "first_color": _first_color, "move_span": _move_span, "size": _size,
}


def _background(rng: np.random.Generator) -> np.ndarray:
    tint = rng.integers(0, 20, size=3)
    ramp = np.linspace(30, 60, HEIGHT, dtype=np.float32)[:, None, None]
    return np.clip(np.broadcast_to(ramp + tint[None, None, :], (HEIGHT, WIDTH, 3)), 0, 255).astype(np.uint8)


def render(background: np.ndarray, objects: list[_Obj]) -> np.ndarray:
    frames = np.empty((NUM_FRAMES, HEIGHT, WIDTH, 3), dtype=np.uint8)
    for t in range(NUM_FRAMES):
        frame = background.copy()
        for obj in objects:
            obj.draw(frame, t)
        frames[t] = frame
    return frames


def clip_spec(seed: int, index: int) -> tuple[str, dict[str, Any], np.ndarray]:
    """(kind, question spec, frames) of clip `index` of the split with `seed`: depends on nothing else."""
    kind = KINDS[index % len(KINDS)]
    rng = np.random.default_rng([seed, index, GENERATOR_VERSION])
    background = _background(rng)
    spec = _BUILDERS[kind](_Layout(rng), index // len(KINDS))
    return kind, spec, render(background, spec["objects"])


def split_seed(split: str) -> int:
    if split not in SPLIT_SEEDS:
        raise ValueError(f"split must be one of {', '.join(SPLIT_SEEDS)}, got {split!r}")
    return SPLIT_SEEDS[split]


def build_shapes_dataset(out_dir: str | os.PathLike, num_clips: int = 240, split: str = "train") -> Path:
    """Render the first `num_clips` clips of `split` into out_dir/videos and write out_dir/shapes-<n>.json.

    Clip i depends only on (split, i): a bigger build extends a smaller one, and existing mp4 files (their
    names carry a hash of what determines them) are reused.
    """
    if num_clips < 1:
        raise ValueError(f"num_clips must be >= 1, got {num_clips}")
    seed = split_seed(split)
    out = Path(out_dir)
    videos = out / "videos"
    videos.mkdir(parents=True, exist_ok=True)
    records = []
    for i in range(num_clips):
        kind, spec, frames = clip_spec(seed, i)
        key = json.dumps([GENERATOR_VERSION, seed, i, WIDTH, HEIGHT, FPS, NUM_FRAMES])
        name = f"{split}_{i:05d}_{kind}_{hashlib.sha1(key.encode()).hexdigest()[:10]}.mp4"
        if not (videos / name).is_file() or (videos / name).stat().st_size == 0:
            write_mp4(videos / name, frames, FPS)
        records.append(question_record(i, spec, name, DATA_SOURCE, "shapes", {
            "kind": kind, "split": split, "seed": seed, "fps": FPS, "num_frames": NUM_FRAMES, "width": WIDTH,
            "height": HEIGHT, "objects": [o.meta() for o in spec["objects"]], **spec["meta"]}))
    return atomic_write_json(out / annotation_name(num_clips), records)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="output folder (shapes-<n>.json + videos/)")
    parser.add_argument("--split", default="train", choices=list(SPLIT_SEEDS))
    parser.add_argument("--num-clips", type=int, default=240)
    args = parser.parse_args(argv)
    try:
        path = build_shapes_dataset(args.out, args.num_clips, args.split)
    except ValueError as exc:
        parser.error(str(exc))
    print(path)


if __name__ == "__main__":
    main()
