"""Occlusion: rectangular blocks covering 5-40 % of the frame, static or moving smoothly.

`static_blocks` keeps one mask for the whole clip. `moving_blocks` moves each block along a
Gaussian-smoothed random walk that bounces off the frame edges; a block moves at most
MAX_STEP_FRACTION of the frame size between two frames. Fill: black, the clip's mean colour, or a
noise texture that belongs to the block (it moves with it).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rova.corruption.base import Params, Variant, clip_mean, new_seed, severity_value, smooth_walk

COVERAGE = (0.05, 0.10, 0.20, 0.30, 0.40)
MAX_BLOCKS = 3
WANDER_FRACTION = 0.3  # amplitude of a moving block's walk, as a fraction of the frame size
MAX_STEP_FRACTION = WANDER_FRACTION / 2  # smooth_walk bounds a step by half its amplitude


def _place_blocks(rng: np.random.Generator, h: int, w: int, coverage: float) -> list[dict[str, int]]:
    n = int(rng.integers(1, MAX_BLOCKS + 1))
    area = coverage * h * w / n
    blocks = []
    for _ in range(n):
        aspect = float(np.exp(rng.uniform(np.log(0.5), np.log(2.0))))  # width / height
        bw = int(min(w, max(1, round(np.sqrt(area * aspect)))))
        bh = int(min(h, max(1, round(area / bw))))
        blocks.append({"h": bh, "w": bw})
    # Top-left corners: a few tries to avoid overlap, so the covered fraction matches the severity.
    placed: list[tuple[int, int, int, int]] = []
    for block in blocks:
        for _attempt in range(20):
            y, x = int(rng.integers(0, h - block["h"] + 1)), int(rng.integers(0, w - block["w"] + 1))
            bh, bw = block["h"], block["w"]
            if all(y >= py + ph or py >= y + bh or x >= px + pw or px >= x + bw for py, px, ph, pw in placed):
                break
        placed.append((y, x, block["h"], block["w"]))
        block["y0"], block["x0"] = y, x
    return blocks


def _reflect(values: np.ndarray, upper: int) -> np.ndarray:
    """Fold positions into [0, upper] by mirroring at both ends (a bounce; never increases a step)."""
    if upper == 0:
        return np.zeros_like(values)
    period = 2 * upper
    folded = np.mod(values, period)
    return np.where(folded > upper, period - folded, folded)


def _draw(rng: np.random.Generator, severity: int, clip: np.ndarray, options: dict[str, Any], moving: bool) -> Params:
    t, h, w, _ = clip.shape
    fill = options["fill"]  # concrete: the engine resolves "any" before drawing
    coverage = severity_value(COVERAGE, severity)
    blocks = []
    for block in _place_blocks(rng, h, w, coverage):
        if moving:
            walk = smooth_walk(rng, t, 2)
            ys = _reflect(block["y0"] + WANDER_FRACTION * h * walk[:, 0], h - block["h"])
            xs = _reflect(block["x0"] + WANDER_FRACTION * w * walk[:, 1], w - block["w"])
            ys, xs = np.rint(ys).astype(int).tolist(), np.rint(xs).astype(int).tolist()
        else:
            ys, xs = [block["y0"]] * t, [block["x0"]] * t
        blocks.append({"h": block["h"], "w": block["w"], "y": ys, "x": xs})
    params: Params = {"coverage": coverage, "fill": fill, "blocks": blocks}
    if fill == "mean":
        params["colour"] = [int(round(c)) for c in clip_mean(clip)]
    elif fill == "noise":
        params["noise_seed"] = new_seed(rng)
    return params


def draw_static(rng: np.random.Generator, severity: int, clip: np.ndarray, options: dict[str, Any]) -> Params:
    return _draw(rng, severity, clip, options, moving=False)


def draw_moving(rng: np.random.Generator, severity: int, clip: np.ndarray, options: dict[str, Any]) -> Params:
    return _draw(rng, severity, clip, options, moving=True)


def apply_blocks(clip: np.ndarray, params: Params) -> np.ndarray:
    out = clip.copy()
    fill = params["fill"]
    textures: list[Any]
    if fill == "noise":
        noise_rng = np.random.default_rng(params["noise_seed"])
        textures = [noise_rng.integers(0, 256, (b["h"], b["w"], 3), dtype=np.uint8) for b in params["blocks"]]
    elif fill == "mean":
        textures = [np.asarray(params["colour"], np.uint8)] * len(params["blocks"])
    elif fill == "black":
        textures = [0] * len(params["blocks"])
    else:
        raise ValueError(f"unknown occlusion fill {fill!r}; expected one of black, mean, noise")
    for block, texture in zip(params["blocks"], textures):
        bh, bw = block["h"], block["w"]
        for i, (y, x) in enumerate(zip(block["y"], block["x"])):
            out[i, y : y + bh, x : x + bw] = texture
    return out


VARIANTS = (
    Variant("static_blocks", draw_static, apply_blocks),
    Variant("moving_blocks", draw_moving, apply_blocks, moving=True),
)
