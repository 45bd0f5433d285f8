"""Shared pieces of the corruption families: the variant contract and small array helpers.

Every variant (a `Variant` in its family module, named in the catalogue, rova/config/corruption.py) is
two functions:
  draw(rng, severity, clip, options) -> params   all randomness happens here, once per clip;
  apply(clip, params) -> out                     deterministic; a function of (clip, params) only.
Its family and its options (names, allowed values) come from its catalogue entry.
`params` holds plain JSON values (every drawn number, plus integer seeds for large noise fields),
so a logged record replays the exact bytes and can be read by a person.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import cv2
import numpy as np

from rova.config.corruption import CATALOGUE

Params = dict[str, Any]
DrawFn = Callable[[np.random.Generator, int, np.ndarray, dict[str, Any]], Params]
ApplyFn = Callable[[np.ndarray, Params], np.ndarray]

MIN_SIDE = 8  # smaller frames cannot hold a blur kernel or a polygon; no model uses them


@dataclass(frozen=True)
class Variant:
    name: str  # its catalogue entry's name
    draw: DrawFn
    apply: ApplyFn
    # Moving variants: the things that move between frames (checked by the coherence tests).
    moving: bool = False

    @property
    def family(self) -> str:
        return CATALOGUE[self.name].family

    @property
    def options(self) -> dict[str, tuple]:
        """Option name -> allowed values (the first is the default), from the catalogue."""
        return {name: option.values for name, option in CATALOGUE[self.name].options.items()}


def check_clip(clip: Any) -> np.ndarray:
    """Return `clip` as a C-contiguous uint8 [T, H, W, 3] array, or raise a clear ValueError."""
    if not isinstance(clip, np.ndarray):
        raise TypeError(f"clip must be a numpy array, got {type(clip).__name__}")
    if clip.dtype != np.uint8:
        raise ValueError(f"clip must be uint8, got {clip.dtype}; convert before corrupting")
    if clip.ndim != 4 or clip.shape[-1] != 3:
        raise ValueError(f"clip must be [T, H, W, 3], got shape {tuple(clip.shape)}")
    t, h, w, _ = clip.shape
    if t < 1 or h < MIN_SIDE or w < MIN_SIDE:
        raise ValueError(f"clip must have T >= 1 and H, W >= {MIN_SIDE}, got shape {tuple(clip.shape)}")
    return np.ascontiguousarray(clip)


def as_image(clip: np.ndarray) -> np.ndarray:
    """View [T, H, W, C] as one tall [T*H, W, C] image, for per-pixel OpenCV ops over the whole clip."""
    t, h, w, c = clip.shape
    return clip.reshape(t * h, w, c)


def lut_u8(values: np.ndarray) -> np.ndarray:
    """Round and saturate float values into uint8 (lookup tables, gain maps)."""
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


def clip_mean(clip: np.ndarray) -> list[float]:
    """Per-channel mean of the whole clip (OpenCV: one SIMD pass, no float copy)."""
    return [float(v) for v in cv2.mean(as_image(clip))[:3]]


def new_seed(rng: np.random.Generator) -> int:
    """An integer seed for a large noise field; stored in the record instead of the field itself."""
    return int(rng.integers(0, 2**63 - 1))


def tile2(layer: np.ndarray) -> np.ndarray:
    """Tile a periodic layer 2 x 2 so any [H, W] window at offset (oy, ox) is a plain slice (a view)."""
    reps = (2, 2) + (1,) * (layer.ndim - 2)
    return np.tile(layer, reps)


def window(tiled: np.ndarray, oy: int, ox: int, h: int, w: int) -> np.ndarray:
    """The [h, w] window of a 2x2-tiled periodic layer at offset (oy, ox) (taken modulo the period)."""
    ph, pw = tiled.shape[0] // 2, tiled.shape[1] // 2
    oy %= ph
    ox %= pw
    return tiled[oy : oy + h, ox : ox + w]


def periodic_offsets(start: list[float], velocity: list[float], t: int) -> list[list[int]]:
    """Integer layer offsets for frames 0..t-1 of a layer moving at constant `velocity` (px/frame).

    The layer is sampled at (y - offset), so content moves by +velocity each frame.
    """
    return [
        [int(np.floor(-(start[0] + velocity[0] * i) + 0.5)), int(np.floor(-(start[1] + velocity[1] * i) + 0.5))]
        for i in range(t)
    ]


def smooth_walk(rng: np.random.Generator, t: int, dims: int, sigma: float = 2.0) -> np.ndarray:
    """A Gaussian-smoothed random walk, shape [t, dims], centred, scaled to max |value| = 1 per dim,
    then shrunk where needed so that max |step| <= 0.5 per frame. So both the amplitude (<= 1) and the
    per-frame motion (<= half the amplitude) are guaranteed, for any t >= 1 (a short clip cannot
    otherwise be smooth)."""
    pad = int(np.ceil(3 * sigma))
    steps = rng.standard_normal((t + 2 * pad, dims))
    walk = np.cumsum(steps, axis=0)
    radius = np.arange(-pad, pad + 1)
    kernel = np.exp(-0.5 * (radius / sigma) ** 2)
    kernel /= kernel.sum()
    smooth = np.stack([np.convolve(walk[:, d], kernel, mode="same") for d in range(dims)], axis=1)
    smooth = smooth[pad : pad + t]
    smooth -= smooth.mean(axis=0, keepdims=True)
    peak = np.abs(smooth).max(axis=0)
    peak[peak == 0] = 1.0
    smooth /= peak
    if t > 1:
        max_step = np.abs(np.diff(smooth, axis=0)).max(axis=0)
        smooth *= np.minimum(1.0, 0.5 / np.maximum(max_step, 1e-12))
    return smooth


def resolve_choice(rng: np.random.Generator, value: str, choices: tuple[str, ...]) -> str:
    """Resolve an option value: "any" draws one of the concrete choices (recorded by the caller)."""
    if value == "any":
        concrete = [c for c in choices if c != "any"]
        return str(concrete[int(rng.integers(len(concrete)))])
    return value


def severity_value(table: tuple, severity: int) -> Any:
    return table[severity - 1]
