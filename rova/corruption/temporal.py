"""Temporal corruptions: frame drop and shuffle. T is always kept.

frame_drop removes 10-50 % of the frames; a dropped frame shows the previous kept frame (`hold`, a
frozen stream) or black. Frames dropped before the first kept frame show the first kept frame (there
is nothing earlier to hold). Modes: `random` frames, `segment` bursts of 2-12 frames, `keep_k` (keep
K evenly spaced frames: a lower frame rate, Kinetics-C).

shuffle permutes a fraction of the frames (20-100 %); every chosen frame leaves its place, so the
permutation is never the identity. Severity 5 permutes all frames.

T-GRPO's shuffled branch is `shuffle_frames`: a uniformly random permutation of all frames by default
(Video-R1: the identity and fixed points occur, with their natural probability), or a derangement of all
frames (`mode="derangement"`, the severity-5 shuffle corruption: no frame keeps its place).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rova.config.tgrpo import SHUFFLE_MODES
from rova.corruption.base import Params, Variant, check_clip, severity_value

DROP_FRACTION = (0.1, 0.2, 0.3, 0.4, 0.5)
BURST_LENGTH = (2, 4, 6, 8, 12)
SHUFFLE_FRACTION = (0.2, 0.4, 0.6, 0.8, 1.0)


def _n_dropped(t: int, fraction: float) -> int:
    # at least one frame goes (the corruption must do something), at least one stays
    return int(min(max(1, round(fraction * t)), t - 1)) if t > 1 else 0


def _dropped_segments(rng: np.random.Generator, t: int, n_drop: int, burst: int) -> np.ndarray:
    """Bursts of `burst` frames (the last one shorter), placed in the gaps between kept frames."""
    lengths = [burst] * (n_drop // burst) + ([n_drop % burst] if n_drop % burst else [])
    kept = t - n_drop
    gaps = kept + 1  # before the first kept frame, between two kept frames, after the last one
    slots = rng.choice(gaps, size=len(lengths), replace=len(lengths) > gaps)
    per_gap = np.zeros(gaps, int)
    np.add.at(per_gap, slots, lengths)
    dropped = np.zeros(t, bool)
    pos = 0
    for g in range(gaps):
        dropped[pos : pos + per_gap[g]] = True
        pos += per_gap[g] + (1 if g < kept else 0)
    return np.flatnonzero(dropped)


def draw_frame_drop(rng: np.random.Generator, severity: int, clip: np.ndarray, options: dict[str, Any]) -> Params:
    t = clip.shape[0]
    mode = options["mode"]  # concrete: the engine resolves "any" before drawing
    fraction = severity_value(DROP_FRACTION, severity)
    n_drop = _n_dropped(t, fraction)
    if n_drop == 0:
        dropped = np.zeros(0, int)
    elif mode == "random":
        # The first n_drop frames of one random order: with a given seed, the frames dropped at a
        # severity are also dropped at every higher one, so severity only ever adds damage.
        dropped = np.sort(rng.permutation(t)[:n_drop])
    elif mode == "segment":
        dropped = _dropped_segments(rng, t, n_drop, severity_value(BURST_LENGTH, severity))
    elif mode == "keep_k":
        k = t - n_drop
        spacing = t / k
        kept = np.floor(rng.uniform(0, spacing) + spacing * np.arange(k)).astype(int)
        dropped = np.setdiff1d(np.arange(t), kept)
    else:
        raise ValueError(f"unknown frame_drop mode {mode!r}; expected one of random, segment, keep_k")
    return {
        "mode": mode,
        "fill": options["fill"],
        "drop_fraction": fraction,
        "burst_length": severity_value(BURST_LENGTH, severity),
        "dropped": [int(i) for i in dropped],
    }


def source_frames(t: int, params: Params) -> np.ndarray:
    """For each output frame, the input frame it shows (-1 = black)."""
    dropped = np.zeros(t, bool)
    dropped[np.asarray(params["dropped"], int)] = True
    if dropped.all():
        raise ValueError("frame_drop record drops every frame; at least one must be kept")
    index = np.arange(t)
    if params["fill"] == "black":
        return np.where(dropped, -1, index)
    if params["fill"] != "hold":
        raise ValueError(f"unknown frame_drop fill {params['fill']!r}; expected hold or black")
    last_kept = np.maximum.accumulate(np.where(dropped, -1, index))
    first_kept = int(np.argmin(dropped))
    return np.where(last_kept < 0, first_kept, last_kept)


def apply_frame_drop(clip: np.ndarray, params: Params) -> np.ndarray:
    source = source_frames(clip.shape[0], params)
    out = clip[np.maximum(source, 0)]
    out[source < 0] = 0
    return out


def draw_shuffle(rng: np.random.Generator, severity: int, clip: np.ndarray, options: dict[str, Any]) -> Params:
    t = clip.shape[0]
    fraction = severity_value(SHUFFLE_FRACTION, severity)
    permutation = np.arange(t)
    if t > 1:
        k = int(min(t, max(2, round(fraction * t))))
        chosen = np.sort(rng.choice(t, size=k, replace=False))
        while True:  # a uniformly random derangement of the chosen frames (expected e tries)
            order = rng.permutation(k)
            if not np.any(order == np.arange(k)):
                break
        permutation[chosen] = chosen[order]
    return {"fraction": fraction, "permutation": [int(i) for i in permutation]}


def apply_shuffle(clip: np.ndarray, params: Params) -> np.ndarray:
    permutation = np.asarray(params["permutation"], int)
    if sorted(permutation.tolist()) != list(range(clip.shape[0])):
        raise ValueError(f"shuffle record holds no permutation of {clip.shape[0]} frames: {permutation.tolist()}")
    return clip[permutation]


VARIANTS = (
    Variant("frame_drop", draw_frame_drop, apply_frame_drop),
    Variant("shuffle", draw_shuffle, apply_shuffle),
)


def shuffle_frames(clip: np.ndarray, seed: int, mode: str = "uniform") -> tuple[np.ndarray, np.ndarray]:
    """T-GRPO's shuffled branch (tgrpo.shuffle): all frames reordered by a permutation drawn from `seed`.

    uniform: every permutation of the T frames is equally likely (Video-R1's random shuffle).
    derangement: uniform over the permutations that move every frame (T > 1); bit-identical to the
    severity-5 `shuffle` corruption with the same seed.
    Returns (shuffled clip, permutation) with shuffled[i] = clip[permutation[i]]. Pure: no global RNG.
    """
    if mode not in SHUFFLE_MODES:
        raise ValueError(f"shuffle mode must be one of {', '.join(SHUFFLE_MODES)}, got {mode!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    clip = check_clip(clip)
    rng = np.random.default_rng(int(seed))
    if mode == "uniform":
        permutation = rng.permutation(clip.shape[0]).astype(np.int64)
    else:
        permutation = np.asarray(draw_shuffle(rng, 5, clip, {})["permutation"], dtype=np.int64)
    return clip[permutation], permutation
