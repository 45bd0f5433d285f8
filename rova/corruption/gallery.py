"""Render every corruption of a real clip: a PNG grid and one animated GIF per family.

    uv run python -m rova.corruption.gallery --video ../shared/data/videos/video_r1_example.mp4 --out docs/img

grid.png: one row per variant (plus the clean clip on top), one column per severity 1-5, each cell
showing `--frames` frames of the corrupted clip. <family>.gif: the clean clip next to every variant of
the family at `--gif-severity`, played over the clip's frames.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from rova.config.corruption import FAMILIES, VARIANTS, VARIANTS_BY_FAMILY
from rova.corruption import CorruptionSpec, corrupt

LABEL_W = 120
HEADER_H = 22
GAP = 4
BACKGROUND = 255


def load_clip(video: Path, num_frames: int, height: int) -> np.ndarray:
    """`num_frames` frames evenly spaced over the video, resized to `height` (aspect kept, even width)."""
    from rova.data.decord_import import decord_module

    decord = decord_module()

    reader = decord.VideoReader(str(video))
    if len(reader) == 0:
        raise ValueError(f"{video}: no frames decoded")
    indices = np.linspace(0, len(reader) - 1, num_frames).round().astype(int)
    frames = reader.get_batch(list(indices)).asnumpy()
    h, w = frames.shape[1:3]
    width = max(2, int(round(w * height / h / 2)) * 2)
    return np.stack([cv2.resize(f, (width, height), interpolation=cv2.INTER_AREA) for f in frames])


def _thumbs(clip: np.ndarray, frames: int, thumb_h: int) -> np.ndarray:
    """`frames` evenly spaced frames of a clip, shrunk to thumb_h and laid side by side."""
    t, h, w, _ = clip.shape
    thumb_w = max(1, int(round(w * thumb_h / h)))
    picks = np.linspace(0, t - 1, frames).round().astype(int)
    tiles = [cv2.resize(clip[i], (thumb_w, thumb_h), interpolation=cv2.INTER_AREA) for i in picks]
    spacer = np.full((thumb_h, 1, 3), BACKGROUND, np.uint8)
    row = [tiles[0]]
    for tile in tiles[1:]:
        row += [spacer, tile]
    return np.concatenate(row, axis=1)


def _label(canvas: np.ndarray, text: str, x: int, y: int, scale: float = 0.45) -> None:
    cv2.putText(canvas, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1, cv2.LINE_AA)


def render_grid(clip: np.ndarray, frames: int, seed: int, thumb_h: int) -> np.ndarray:
    cell = _thumbs(clip, frames, thumb_h)
    cell_h, cell_w = cell.shape[:2]
    rows = ["clean", *VARIANTS]
    height = HEADER_H + len(rows) * (cell_h + GAP)
    width = LABEL_W + 5 * (cell_w + GAP)
    canvas = np.full((height, width, 3), BACKGROUND, np.uint8)
    for s in range(5):
        _label(canvas, f"severity {s + 1}", LABEL_W + s * (cell_w + GAP) + 4, HEADER_H - 7)
    for r, name in enumerate(rows):
        y = HEADER_H + r * (cell_h + GAP)
        _label(canvas, name, 4, y + cell_h // 2 + 5)
        for s in range(5):
            shown = clip if name == "clean" else corrupt(clip, CorruptionSpec(name, s + 1), seed)[0]
            x = LABEL_W + s * (cell_w + GAP)
            canvas[y : y + cell_h, x : x + cell_w] = _thumbs(shown, frames, thumb_h)
    return canvas


def render_family_frames(clip: np.ndarray, family: str, severity: int, seed: int, thumb_h: int) -> list[np.ndarray]:
    """One mosaic per clip frame: the clean clip, then each variant of the family."""
    names = ["clean", *VARIANTS_BY_FAMILY[family]]
    clips = [clip] + [corrupt(clip, CorruptionSpec(v, severity), seed)[0] for v in VARIANTS_BY_FAMILY[family]]
    t, h, w, _ = clip.shape
    thumb_w = int(round(w * thumb_h / h))
    mosaics = []
    for i in range(t):
        canvas = np.full((thumb_h + HEADER_H, len(clips) * (thumb_w + GAP), 3), BACKGROUND, np.uint8)
        for k, (name, c) in enumerate(zip(names, clips)):
            x = k * (thumb_w + GAP)
            canvas[HEADER_H:, x : x + thumb_w] = cv2.resize(c[i], (thumb_w, thumb_h), interpolation=cv2.INTER_AREA)
            _label(canvas, name if name == "clean" else f"{name} s{severity}", x + 2, HEADER_H - 7)
        mosaics.append(canvas)
    return mosaics


def write_gif(frames: list[np.ndarray], path: Path, fps: float) -> None:
    images = [Image.fromarray(f) for f in frames]
    images[0].save(path, save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0, optimize=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rova.corruption.gallery", description=__doc__.split("\n")[0])
    parser.add_argument("--video", type=Path, required=True, help="a video file (decoded with decord)")
    parser.add_argument("--out", type=Path, required=True, help="output folder (created if missing)")
    parser.add_argument("--frames", type=int, default=3, help="frames shown per grid cell (default 3)")
    parser.add_argument("--seed", type=int, default=0, help="corruption seed, the same for every cell (default 0)")
    parser.add_argument("--num-frames", type=int, default=16, help="frames sampled from the video (default 16)")
    parser.add_argument("--height", type=int, default=224, help="clip height before corrupting (default 224)")
    parser.add_argument("--thumb", type=int, default=64, help="grid thumbnail height in px (default 64)")
    parser.add_argument("--gif-severity", type=int, default=4, choices=range(1, 6), help="severity in the GIFs")
    parser.add_argument("--gif-thumb", type=int, default=112, help="GIF tile height in px (default 112)")
    parser.add_argument("--fps", type=float, default=4.0, help="GIF frame rate (default 4)")
    args = parser.parse_args(argv)
    if not args.video.is_file():
        parser.error(f"--video {args.video}: no such file")
    if args.frames < 1 or args.num_frames < max(2, args.frames):
        parser.error("need --frames >= 1 and --num-frames >= max(2, --frames)")

    clip = load_clip(args.video, args.num_frames, args.height)
    args.out.mkdir(parents=True, exist_ok=True)
    grid_path = args.out / "grid.png"
    Image.fromarray(render_grid(clip, args.frames, args.seed, args.thumb)).save(grid_path, optimize=True)
    print(grid_path)
    for family in FAMILIES:
        gif_path = args.out / f"{family}.gif"
        write_gif(render_family_frames(clip, family, args.gif_severity, args.seed, args.gif_thumb), gif_path, args.fps)
        print(gif_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
