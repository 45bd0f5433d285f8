"""Weather corruptions: rain, storm, snow, hail, fog.

Particles (rain streaks, snow flakes, hail stones) are rendered ONCE per clip on a periodic layer
(a torus), and every frame shows a window of that layer moved by a clip-wide velocity: the same drops
fall smoothly from frame to frame instead of being redrawn at random. The fog layer is one plasma
fractal for the whole clip. A layer and its per-frame offsets are all that differ between frames.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from rova.corruption.base import (
    Params,
    Variant,
    as_image,
    lut_u8,
    new_seed,
    periodic_offsets,
    severity_value,
    tile2,
    window,
)
from rova.corruption.photometric import apply_contrast, draw_contrast

_WRAPS = [(sx, sy) for sx in (-1, 0, 1) for sy in (-1, 0, 1)]


def _draw_segments_on_torus(layer: np.ndarray, segments: np.ndarray, value: int, thickness: int) -> None:
    """Anti-aliased line segments [n, 2 (start/end), 2 (x, y)] drawn on a periodic layer: each one is
    also drawn shifted by one period in every direction, so what leaves one edge enters the other."""
    if len(segments) == 0:
        return
    h, w = layer.shape[:2]
    copies = np.concatenate([segments + np.array([sx * w, sy * h]) for sx, sy in _WRAPS])
    pts = np.rint(copies * 16).astype(np.int32)  # 4 fractional bits: sub-pixel positions
    cv2.polylines(layer, list(pts), False, value, thickness=thickness, lineType=cv2.LINE_AA, shift=4)


def _direction(angle_deg: float) -> tuple[float, float]:
    """Unit (dy, dx) of a fall direction given its angle from the vertical (positive = to the right)."""
    a = np.deg2rad(angle_deg)
    return float(np.cos(a)), float(np.sin(a))


# ---------------------------------------------------------------------------------------------
# rain: streaks with a clip-wide slant and speed (Kinetics-C rain; albumentations RandomRain)
RAIN_LENGTH = (10, 30, 60, 60, 80)
RAIN_AREA_PER_STREAK = (770, 660, 560, 470, 400)
RAIN_DARKEN = (0.8, 0.74, 0.68, 0.62, 0.5)


def draw_rain(rng: np.random.Generator, severity: int, clip: np.ndarray, options: dict[str, Any]) -> Params:
    _, h, w, _ = clip.shape
    length = severity_value(RAIN_LENGTH, severity)
    return {
        "length": length,
        "width": 1,
        "colour": 220,
        "blur": 3,
        "darken": severity_value(RAIN_DARKEN, severity),
        "n_streaks": max(1, round(h * w / severity_value(RAIN_AREA_PER_STREAK, severity))),
        "slant_deg": float(rng.uniform(-20.0, 20.0)),
        # fall speed in px/frame along the streak; a streak is the drop's path during the exposure
        "speed": float(length * rng.uniform(0.8, 1.5)),
        "streak_seed": new_seed(rng),
    }


def rain_layer(h: int, w: int, params: Params) -> np.ndarray:
    """Streak coverage (uint8 alpha) on an [h, w] torus."""
    rng = np.random.default_rng(params["streak_seed"])
    n = params["n_streaks"]
    start = np.stack([rng.uniform(0, w, n), rng.uniform(0, h, n)], axis=1)
    dy, dx = _direction(params["slant_deg"])
    segments = np.stack([start, start + params["length"] * np.array([dx, dy])], axis=1)
    layer = np.zeros((h, w), np.uint8)
    _draw_segments_on_torus(layer, segments, 255, params["width"])
    return layer


def rain_offsets(params: Params, t: int) -> list[list[int]]:
    dy, dx = _direction(params["slant_deg"])
    return periodic_offsets([0.0, 0.0], [params["speed"] * dy, params["speed"] * dx], t)


def apply_rain(clip: np.ndarray, params: Params) -> np.ndarray:
    t, h, w, _ = clip.shape
    alpha = rain_layer(h, w, params)
    levels = np.arange(256, dtype=np.float64)
    # background weight (1 - alpha) * darken and premultiplied streak colour, both x/255 in uint8
    keep = tile2(cv2.cvtColor(cv2.LUT(alpha, lut_u8((255 - levels) * params["darken"])), cv2.COLOR_GRAY2RGB))
    paint = tile2(cv2.cvtColor(cv2.LUT(alpha, lut_u8(params["colour"] * levels / 255)), cv2.COLOR_GRAY2RGB))
    out = np.empty_like(clip)
    frame = np.empty((h, w, 3), np.uint8)
    k = params["blur"]
    for i, (oy, ox) in enumerate(rain_offsets(params, t)):
        cv2.multiply(clip[i], window(keep, oy, ox, h, w), dst=frame, scale=1.0 / 255)
        cv2.add(frame, window(paint, oy, ox, h, w), dst=frame)
        cv2.blur(frame, (k, k), dst=out[i])
    return out


# ---------------------------------------------------------------------------------------------
# storm: rain + contrast, both at the same severity, + lightning frames. (Holding the rain at
# "heavy" (severity 3) for storm 1-3 left only the contrast step between them, which barely changes
# a rain-darkened clip: storm 1-3 were indistinguishable, so the rain follows the severity too.)
STORM_FLASH_PROBABILITY = (0.0, 0.02, 0.04, 0.06, 0.08)


def draw_storm(rng: np.random.Generator, severity: int, clip: np.ndarray, options: dict[str, Any]) -> Params:
    t = clip.shape[0]
    rain = draw_rain(rng, severity, clip, options)
    p_flash = severity_value(STORM_FLASH_PROBABILITY, severity)
    flashes = rng.random(t) < p_flash
    return {
        "rain": rain,
        "contrast": draw_contrast(rng, severity, clip, options),
        "flash_probability": p_flash,
        "flash_frames": [int(i) for i in np.flatnonzero(flashes)],
        "flash_strength": float(rng.uniform(0.4, 0.7)),  # blend towards white on a lightning frame
    }


def apply_storm(clip: np.ndarray, params: Params) -> np.ndarray:
    out = apply_rain(apply_contrast(clip, params["contrast"]), params["rain"])
    if params["flash_frames"]:
        levels = np.arange(256, dtype=np.float64)
        flash = lut_u8(levels + (255 - levels) * params["flash_strength"])
        for i in params["flash_frames"]:
            cv2.LUT(out[i], flash, dst=out[i])
    return out


# ---------------------------------------------------------------------------------------------
# snow: ImageNet-C snow, with the flake layer drifting between frames
# (loc, scale, zoom, threshold, blur radius, blur sigma, blend)
SNOW = (
    (0.1, 0.3, 3.0, 0.5, 10, 4.0, 0.8),
    (0.2, 0.3, 2.0, 0.5, 12, 4.0, 0.7),
    (0.55, 0.3, 4.0, 0.9, 12, 8.0, 0.7),
    (0.55, 0.3, 4.5, 0.85, 12, 8.0, 0.65),
    (0.55, 0.3, 2.5, 0.85, 12, 12.0, 0.55),
)


def draw_snow(rng: np.random.Generator, severity: int, clip: np.ndarray, options: dict[str, Any]) -> Params:
    loc, scale, zoom, threshold, radius, sigma, blend = severity_value(SNOW, severity)
    speed = float(rng.uniform(1.5, 4.0))
    return {
        "loc": loc,
        "scale": scale,
        "zoom": zoom,
        "threshold": threshold,
        "blur_radius": radius,
        "blur_sigma": sigma,
        "blend": blend,
        # ImageNet-C draws the motion-blur angle in [-135, -45] deg, i.e. within 45 deg of vertical
        "fall_deg": float(rng.uniform(-45.0, 45.0)),
        "speed_near": speed,  # px/frame of the flake layer
        "speed_far": float(speed * rng.uniform(0.4, 0.7)),  # its 180-degree-rotated twin, further away
        "flake_seed": new_seed(rng),
    }


def _motion_blur_periodic(layer: np.ndarray, radius: int, sigma: float, angle_deg: float) -> np.ndarray:
    """One-sided Gaussian-weighted line blur (ImageMagick's motion_blur, used by ImageNet-C) on a
    periodic layer: each flake leaves a trail of 2*radius+1 taps opposite to its fall direction."""
    dy, dx = _direction(angle_deg)
    taps = np.arange(2 * radius + 1)
    weights = np.exp(-(taps**2) / (2 * sigma**2))
    weights /= weights.sum()
    oy, ox = np.rint(taps * dy).astype(int), np.rint(taps * dx).astype(int)
    py, px = int(np.abs(oy).max()), int(np.abs(ox).max())
    kernel = np.zeros((2 * py + 1, 2 * px + 1), np.float32)
    np.add.at(kernel, (py + oy, px + ox), weights)
    padded = np.pad(layer, ((py, py), (px, px)), mode="wrap")
    blurred = cv2.filter2D(padded, -1, kernel, borderType=cv2.BORDER_REFLECT_101)
    return blurred[py : py + layer.shape[0], px : px + layer.shape[1]]


def snow_layer(h: int, w: int, params: Params) -> np.ndarray:
    """Flake layer (uint8) on a periodic tile at least [h, w] large."""
    rng = np.random.default_rng(params["flake_seed"])
    zoom = params["zoom"]
    # Noise at 1/zoom resolution, upsampled by zoom with wrap-around padding so the result tiles.
    # Even sizes make size * zoom an integer for every zoom in the table (multiples of 0.5).
    hs, ws = 2 * int(np.ceil(h / (2 * zoom))), 2 * int(np.ceil(w / (2 * zoom)))
    small = rng.normal(params["loc"], params["scale"], (hs, ws)).astype(np.float32)
    pad = 2
    big = cv2.resize(
        np.pad(small, pad, mode="wrap"),
        (round((ws + 2 * pad) * zoom), round((hs + 2 * pad) * zoom)),
        interpolation=cv2.INTER_LINEAR,
    )
    o = round(pad * zoom)
    flakes = big[o : o + round(hs * zoom), o : o + round(ws * zoom)]
    flakes[flakes < params["threshold"]] = 0
    layer = lut_u8(np.clip(flakes, 0, 1) * 255)
    return _motion_blur_periodic(layer, params["blur_radius"], params["blur_sigma"], params["fall_deg"])


def particle_offsets(params: Params, t: int) -> tuple[list[list[int]], list[list[int]]]:
    """Per-frame window offsets of the near and far particle layers (snow and hail fall the same way)."""
    dy, dx = _direction(params["fall_deg"])
    near = periodic_offsets([0.0, 0.0], [params["speed_near"] * dy, params["speed_near"] * dx], t)
    far = periodic_offsets([0.0, 0.0], [params["speed_far"] * dy, params["speed_far"] * dx], t)
    return near, far


def apply_snow(clip: np.ndarray, params: Params) -> np.ndarray:
    t, h, w, _ = clip.shape
    near_layer = snow_layer(h, w, params)
    near = tile2(cv2.cvtColor(near_layer, cv2.COLOR_GRAY2RGB))
    far = tile2(cv2.cvtColor(np.ascontiguousarray(near_layer[::-1, ::-1]), cv2.COLOR_GRAY2RGB))
    # ImageNet-C whitening: blend * x + (1 - blend) * max(x, 1.5 * gray + 0.5), static per pixel.
    image = as_image(clip)
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    lift = cv2.LUT(gray, lut_u8(np.arange(256) * 1.5 + 127.5))
    lifted = cv2.max(image, cv2.cvtColor(lift, cv2.COLOR_GRAY2RGB))
    blend = params["blend"]
    out = cv2.addWeighted(image, blend, lifted, 1.0 - blend, 0.0).reshape(clip.shape)
    near_off, far_off = particle_offsets(params, t)
    for i in range(t):
        cv2.add(out[i], window(near, *near_off[i], h, w), dst=out[i])
        cv2.add(out[i], window(far, *far_off[i], h, w), dst=out[i])
    return out


# ---------------------------------------------------------------------------------------------
# hail: snow-like, with larger (2-4 px) bright stones falling faster
HAIL_AREA_PER_STONE = (1600, 1100, 800, 600, 450)
HAIL_SPEED = (10.0, 12.0, 14.0, 16.0, 18.0)  # px/frame, times U(0.9, 1.2)
HAIL_DARKEN = (0.95, 0.9, 0.85, 0.8, 0.75)


def draw_hail(rng: np.random.Generator, severity: int, clip: np.ndarray, options: dict[str, Any]) -> Params:
    _, h, w, _ = clip.shape
    speed = float(severity_value(HAIL_SPEED, severity) * rng.uniform(0.9, 1.2))
    return {
        "n_stones": max(1, round(h * w / severity_value(HAIL_AREA_PER_STONE, severity))),
        "min_diameter": 2,
        "max_diameter": 4,
        "darken": severity_value(HAIL_DARKEN, severity),
        "exposure": 0.3,  # fraction of a frame's motion smeared into each stone
        "fall_deg": float(rng.uniform(-15.0, 15.0)),
        "speed_near": speed,
        "speed_far": float(speed * rng.uniform(0.5, 0.75)),
        "stone_seed": new_seed(rng),
    }


def hail_layer(h: int, w: int, params: Params) -> np.ndarray:
    """Stone layer (uint8 brightness, 0 = no stone) on an [h, w] torus."""
    rng = np.random.default_rng(params["stone_seed"])
    n = params["n_stones"]
    centre = np.stack([rng.uniform(0, w, n), rng.uniform(0, h, n)], axis=1)
    diameter = rng.integers(params["min_diameter"], params["max_diameter"] + 1, n)
    dy, dx = _direction(params["fall_deg"])
    trail = max(1.0, params["speed_near"] * params["exposure"]) * np.array([dx, dy])
    segments = np.stack([centre - trail, centre], axis=1)
    layer = np.zeros((h, w), np.uint8)
    for d in range(params["min_diameter"], params["max_diameter"] + 1):
        # bigger stones are closer to the camera and a little brighter
        _draw_segments_on_torus(layer, segments[diameter == d], 225 + 10 * (d - 2), int(d))
    return layer


def apply_hail(clip: np.ndarray, params: Params) -> np.ndarray:
    t, h, w, _ = clip.shape
    layer = hail_layer(h, w, params)
    near = tile2(cv2.cvtColor(layer, cv2.COLOR_GRAY2RGB))
    far = tile2(cv2.cvtColor(np.ascontiguousarray(layer[::-1, ::-1]), cv2.COLOR_GRAY2RGB))
    darken = lut_u8(np.arange(256) * params["darken"])
    out = cv2.LUT(as_image(clip), darken).reshape(clip.shape)
    stones = np.empty((h, w, 3), np.uint8)
    near_off, far_off = particle_offsets(params, t)
    for i in range(t):
        cv2.max(window(near, *near_off[i], h, w), window(far, *far_off[i], h, w), dst=stones)
        cv2.max(out[i], stones, dst=out[i])
    return out


# ---------------------------------------------------------------------------------------------
# fog: ImageNet-C plasma-fractal fog, one layer per clip
# (strength, decay): strength grows strictly (the first table had 2.5 at severities 3 and 4).
FOG = ((1.5, 2.0), (2.0, 2.0), (2.5, 1.7), (2.75, 1.5), (3.0, 1.4))
# The visible window of the fractal is standardised to this mean and standard deviation, so that the
# strength alone sets how much fog there is and the decay only its texture. ImageNet-C instead
# min-max normalises the whole (larger, power-of-two) map and shows a corner of it: the corner's mean
# then wanders between ~0.3 and ~0.7 with the seed and with the decay, while the scene weight
# 1 / (1 + s) changes only 2-3 % per level from severity 3 on: with that layer the distance from the
# clean clip did not grow strictly on 18 of 36 (real clip, seed) pairs (docs/corruptions.md).
FOG_MEAN, FOG_STD = 0.5, 0.12


def draw_fog(rng: np.random.Generator, severity: int, clip: np.ndarray, options: dict[str, Any]) -> Params:
    strength, decay = severity_value(FOG, severity)
    return {
        "strength": strength,
        "decay": decay,
        "max_value": float(clip.max()) / 255.0,  # ImageNet-C rescales by the (here: clip-wide) maximum
        "fog_seed": new_seed(rng),
        "layer_mean": FOG_MEAN,
        "layer_std": FOG_STD,
    }


def plasma_fractal(rng: np.random.Generator, mapsize: int, decay: float) -> np.ndarray:
    """Diamond-square plasma fractal in [0, 1], [mapsize, mapsize] (mapsize a power of two); the
    ImageNet-C algorithm, float32, with all the random numbers of one level drawn in one call."""
    grid = np.zeros((mapsize, mapsize), np.float32)
    step, wibble = mapsize, 100.0

    def jitter(shape: tuple[int, ...]) -> np.ndarray:
        # ImageNet-C: wibble * uniform(-wibble, wibble)
        return (wibble * wibble) * (2.0 * rng.random(shape, dtype=np.float32) - 1.0)

    while step >= 2:
        half = step // 2
        corners = grid[0:mapsize:step, 0:mapsize:step]
        squares = corners + np.roll(corners, -1, axis=0)
        squares += np.roll(squares, -1, axis=1)
        grid[half:mapsize:step, half:mapsize:step] = squares / 4 + jitter(squares.shape)
        centres = grid[half:mapsize:step, half:mapsize:step]
        corners = grid[0:mapsize:step, 0:mapsize:step]
        left = centres + np.roll(centres, 1, axis=0) + corners + np.roll(corners, -1, axis=1)
        grid[0:mapsize:step, half:mapsize:step] = left / 4 + jitter(left.shape)
        top = centres + np.roll(centres, 1, axis=1) + corners + np.roll(corners, -1, axis=0)
        grid[half:mapsize:step, 0:mapsize:step] = top / 4 + jitter(top.shape)
        step //= 2
        wibble /= decay
    grid -= grid.min()
    peak = grid.max()
    return grid / peak if peak > 0 else grid


def fog_layer(h: int, w: int, params: Params) -> np.ndarray:
    """The clip's fog layer in [0, 1], shape [h, w] (float32): the [h, w] corner of a plasma fractal,
    standardised to (layer_mean, layer_std) over that corner. A record without those keys (written
    before they existed) replays the old layer, the fractal min-max normalised over the whole map."""
    mapsize = 1 << max(1, int(np.ceil(np.log2(max(h, w)))))
    layer = plasma_fractal(np.random.default_rng(params["fog_seed"]), mapsize, params["decay"])[:h, :w]
    if "layer_std" not in params:
        return layer
    mean, std = cv2.meanStdDev(layer)
    scale = params["layer_std"] / float(std[0, 0]) if std[0, 0] > 0 else 0.0
    layer = (layer - np.float32(mean[0, 0])) * np.float32(scale) + np.float32(params["layer_mean"])
    return np.clip(layer, 0.0, 1.0, out=layer)


def apply_fog(clip: np.ndarray, params: Params) -> np.ndarray:
    # ImageNet-C: (x + s * fog) * max / (max + s), i.e. a tone curve plus one static additive layer.
    t, h, w, _ = clip.shape
    strength, peak = params["strength"], params["max_value"]
    k = peak / (peak + strength)
    out = cv2.LUT(as_image(clip), lut_u8(np.arange(256) * k)).reshape(clip.shape)
    fog = cv2.cvtColor(lut_u8(255.0 * strength * k * fog_layer(h, w, params)), cv2.COLOR_GRAY2RGB)
    for i in range(t):
        cv2.add(out[i], fog, dst=out[i])
    return out


VARIANTS = (
    Variant("rain", draw_rain, apply_rain, moving=True),
    Variant("storm", draw_storm, apply_storm, moving=True),
    Variant("snow", draw_snow, apply_snow, moving=True),
    Variant("hail", draw_hail, apply_hail, moving=True),
    Variant("fog", draw_fog, apply_fog),
)
