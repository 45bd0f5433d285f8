"""Photometric corruptions: overexposure, dusk, night, shadows, contrast.

All of them are static over the clip (one tint, one shadow mask, one tone curve for every frame),
except night's shot noise, which is fresh sensor noise on every frame by nature.
"""

from __future__ import annotations

from statistics import NormalDist
from typing import Any

import albucore
import cv2
import numpy as np

from rova.corruption.base import (
    Params,
    Variant,
    as_image,
    clip_mean,
    lut_u8,
    new_seed,
    severity_value,
)

# ---------------------------------------------------------------------------------------------
# overexposure: HSV V += c (ImageNet-C brightness)
OVEREXPOSURE_SHIFT = (0.1, 0.2, 0.3, 0.4, 0.5)


def draw_overexposure(rng: np.random.Generator, severity: int, clip: np.ndarray, options: dict[str, Any]) -> Params:
    return {"value_shift": severity_value(OVEREXPOSURE_SHIFT, severity)}


def apply_overexposure(clip: np.ndarray, params: Params) -> np.ndarray:
    # 8-bit HSV over the whole clip as one tall image: two SIMD colour conversions and one add.
    hsv = cv2.cvtColor(as_image(clip), cv2.COLOR_RGB2HSV)
    shift = float(np.rint(params["value_shift"] * 255))
    cv2.add(hsv, (0.0, 0.0, shift, 0.0), dst=hsv)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB).reshape(clip.shape)


# ---------------------------------------------------------------------------------------------
# dusk: warm tint + linear darkening gradient
DUSK_INTENSITY = (0.1, 0.2, 0.3, 0.4, 0.5)


def draw_dusk(rng: np.random.Generator, severity: int, clip: np.ndarray, options: dict[str, Any]) -> Params:
    return {
        "intensity": severity_value(DUSK_INTENSITY, severity),
        # direction in which the light fades (0 deg = darker towards the right, 90 = towards the bottom)
        "gradient_angle_deg": float(rng.uniform(0.0, 360.0)),
        "warmth": float(rng.uniform(0.8, 1.2)),
    }


def dusk_gain_map(h: int, w: int, params: Params) -> np.ndarray:
    """The static per-pixel, per-channel gain in [0, 1] as uint8 (x/255), shape [h, w, 3]."""
    intensity = params["intensity"]
    angle = np.deg2rad(params["gradient_angle_deg"])
    ys = (np.arange(h, dtype=np.float32) - (h - 1) / 2) / max(h, w)
    xs = (np.arange(w, dtype=np.float32) - (w - 1) / 2) / max(h, w)
    proj = np.cos(angle) * xs[None, :] + np.sin(angle) * ys[:, None]
    span = float(proj.max() - proj.min())
    pos = (proj - proj.min()) / span if span > 0 else np.zeros_like(proj)
    darkness = 1.0 - intensity * (0.3 + 0.7 * pos)
    warm = intensity * params["warmth"]
    tint = np.array([1.0, 1.0 - 0.35 * warm, 1.0 - 0.7 * warm], dtype=np.float32)
    return lut_u8(255.0 * darkness[..., None] * tint)


def apply_dusk(clip: np.ndarray, params: Params) -> np.ndarray:
    t, h, w, _ = clip.shape
    gain = dusk_gain_map(h, w, params)
    out = np.empty_like(clip)
    for i in range(t):
        cv2.multiply(clip[i], gain, dst=out[i], scale=1.0 / 255)
    return out


# ---------------------------------------------------------------------------------------------
# night: gain, then gamma, then a cool tint, then shot noise (all on [0, 1] values).
# (gain, gamma, photon count c); the scene stays visible at every severity (the first table's
# (0.3, 3) and (0.2, 4) left a black clip: a mean level < 10/255).
NIGHT = ((0.8, 1.2, 60.0), (0.7, 1.35, 40.0), (0.6, 1.5, 25.0), (0.5, 1.7, 15.0), (0.4, 1.9, 10.0))
NIGHT_TINT = (0.9, 1.0, 1.1)  # RGB gains: moonlight is bluer
_Z_SCALE = 32.0  # standard normal quantiles stored as int16 in units of 1/32


def draw_night(rng: np.random.Generator, severity: int, clip: np.ndarray, options: dict[str, Any]) -> Params:
    gain, gamma, photons = severity_value(NIGHT, severity)
    t, h, w, _ = clip.shape
    return {
        "gain": gain,
        "gamma": gamma,
        "tint": list(NIGHT_TINT),
        "shot_noise_c": photons,
        "noise_seed": new_seed(rng),
        # each frame reads its noise from a different window of one [2H, 2W] pool (see apply_night)
        "noise_offsets": [[int(rng.integers(0, h + 1)), int(rng.integers(0, w + 1))] for _ in range(t)],
    }


def _normal_quantile_lut() -> np.ndarray:
    """Standard normal quantiles at the 256 byte midpoints, int16 in units of 1/32."""
    inv_cdf = NormalDist().inv_cdf
    return np.array([round(inv_cdf((k + 0.5) / 256) * _Z_SCALE) for k in range(256)], dtype=np.int16)


_NORMAL_Q = _normal_quantile_lut()


def night_noise_pool(h: int, w: int, noise_seed: int) -> np.ndarray:
    """Standard normal noise (int16, units of 1/32) for a [2H, 2W, 3] pool.

    Drawing 4.5 M fresh normals per clip costs ~40 ms; one pool of uniform bytes mapped through a
    quantile table costs ~1 ms, and a different random window of it per frame is, to the eye and to
    a model, fresh noise each frame.
    """
    # Generator.bytes gives the bytes of integers(0, 256, size, dtype=np.uint8) (both split the same 32-bit draws,
    # tests/corruption pins it) at ~2/3 of the cost: no bounded-integer path.
    uniform = np.frombuffer(np.random.default_rng(noise_seed).bytes(2 * h * 2 * w * 3), np.uint8)
    return cv2.LUT(uniform.reshape(2 * h, 2 * w, 3), _NORMAL_Q)


def night_curves(params: Params) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel lookup tables [256, 3]: the mean level y = tint * (gain x)^gamma as uint8, and the
    shot-noise std 255 sqrt(y / c) as int16 (Poisson(c y) / c has mean y and std sqrt(y / c)).
    A record without a tint (written before the tint existed) replays untinted, byte for byte."""
    x = np.arange(256, dtype=np.float64) / 255
    dark = np.clip(params["gain"] * x, 0, 1) ** params["gamma"]
    level = np.clip(dark[:, None] * np.asarray(params.get("tint", (1.0, 1.0, 1.0)), np.float64)[None, :], 0, 1)
    sigma = np.rint(255 * np.sqrt(level / params["shot_noise_c"])).astype(np.int16)
    return lut_u8(255 * level), sigma


def apply_night(clip: np.ndarray, params: Params) -> np.ndarray:
    _, h, w, _ = clip.shape
    mean_lut, sigma_lut = night_curves(params)
    # Channel planes, frame by frame: cv2.LUT maps one plane through a one-column table twice as fast as it maps
    # RGB through a 3-column one, splitting and merging a frame costs ~1/10 of that, and the working set (a frame's
    # planes, its stds and noise) stays in cache, where whole-clip temporaries (13.5 MB) paid fresh-page faults.
    # Same operations on the same values per channel as with 3-column tables: the same bytes
    # (tests/corruption: test_night_gives_the_bytes_of_its_first_whole_clip_implementation).
    mean_luts = [np.ascontiguousarray(mean_lut[:, c]) for c in range(3)]
    sigma_luts = [np.ascontiguousarray(sigma_lut[:, c]) for c in range(3)]
    pool = cv2.split(night_noise_pool(h, w, params["noise_seed"]))
    out = np.empty_like(clip)
    planes = [np.empty((h, w), np.uint8) for _ in range(3)]
    levels = [np.empty((h, w), np.uint8) for _ in range(3)]
    std = np.empty((h, w), np.int16)
    noise = np.empty((h, w), np.int16)
    for i, (oy, ox) in enumerate(params["noise_offsets"]):
        cv2.split(clip[i], planes)
        for c in range(3):
            cv2.LUT(planes[c], mean_luts[c], dst=levels[c])
            cv2.LUT(planes[c], sigma_luts[c], dst=std)
            cv2.multiply(std, pool[c][oy : oy + h, ox : ox + w], dst=noise, scale=1.0 / _Z_SCALE)
            cv2.add(levels[c], noise, dst=levels[c], dtype=cv2.CV_8U)
        cv2.merge(levels, out[i])
    return out


# ---------------------------------------------------------------------------------------------
# shadows: 1-3 soft polygons, fixed for the clip
SHADOW_COUNT = (1, 1, 2, 2, 3)
SHADOW_INTENSITY = (0.3, 0.45, 0.55, 0.65, 0.75)


def draw_shadows(rng: np.random.Generator, severity: int, clip: np.ndarray, options: dict[str, Any]) -> Params:
    _, h, w, _ = clip.shape
    polygons = []
    for _ in range(severity_value(SHADOW_COUNT, severity)):
        n_vertices = int(rng.integers(3, 8))
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        angles = np.sort(rng.uniform(0, 2 * np.pi, n_vertices))
        radii = rng.uniform(0.15, 0.45, n_vertices)
        polygons.append(
            [[float(cx + r * w * np.cos(a)), float(cy + r * h * np.sin(a))] for r, a in zip(radii, angles)]
        )
    return {
        "intensity": severity_value(SHADOW_INTENSITY, severity),
        "polygons": polygons,
        "softness": float(rng.uniform(0.02, 0.05)),  # Gaussian edge sigma, fraction of min(H, W)
    }


def shadow_gain_map(h: int, w: int, params: Params) -> np.ndarray:
    """The static shadow gain as uint8 (x/255), shape [h, w, 3]; 255 = unshadowed."""
    # Drawn and blurred at quarter resolution (the edges are soft anyway), then upsampled.
    f = 4
    sh, sw = max(2, -(-h // f)), max(2, -(-w // f))
    gain = np.ones((sh, sw), np.float32)
    for vertices in params["polygons"]:
        mask = np.zeros((sh, sw), np.float32)
        pts = np.rint(np.asarray(vertices, np.float64) / f * 16).astype(np.int32)
        cv2.fillPoly(mask, [pts], 1.0, lineType=cv2.LINE_AA, shift=4)
        gain *= 1.0 - params["intensity"] * mask
    sigma = max(0.5, params["softness"] * min(h, w) / f)
    gain = cv2.GaussianBlur(gain, (0, 0), sigma, borderType=cv2.BORDER_REPLICATE)
    gain = cv2.resize(gain, (w, h), interpolation=cv2.INTER_LINEAR)
    return cv2.cvtColor(lut_u8(gain * 255), cv2.COLOR_GRAY2RGB)


def apply_shadows(clip: np.ndarray, params: Params) -> np.ndarray:
    t, h, w, _ = clip.shape
    gain = shadow_gain_map(h, w, params)
    out = np.empty_like(clip)
    for i in range(t):
        cv2.multiply(clip[i], gain, dst=out[i], scale=1.0 / 255)
    return out


# ---------------------------------------------------------------------------------------------
# contrast: (x - mean) * c + mean, mean over the whole clip (Kinetics-C)
CONTRAST_FACTOR = (0.5, 0.4, 0.3, 0.2, 0.1)


def draw_contrast(rng: np.random.Generator, severity: int, clip: np.ndarray, options: dict[str, Any]) -> Params:
    # One mean for the whole clip, so every frame gets the same tone curve (no flicker).
    return {"factor": severity_value(CONTRAST_FACTOR, severity), "mean": float(np.mean(clip_mean(clip)))}


def apply_contrast(clip: np.ndarray, params: Params) -> np.ndarray:
    # albumentations' RandomBrightnessContrast.apply is exactly this call (alpha=c, beta=(1-c)*mean);
    # with scalar alpha/beta it is one uint8 lookup table over the whole clip, i.e. clip-coherent.
    # albucore is called directly because importing albumentations pulls in torch (~4 s).
    factor = params["factor"]
    return albucore.multiply_add(clip, factor, (1.0 - factor) * params["mean"], inplace=False)


VARIANTS = (
    Variant("overexposure", draw_overexposure, apply_overexposure),
    Variant("dusk", draw_dusk, apply_dusk),
    Variant("night", draw_night, apply_night, moving=True),
    Variant("shadows", draw_shadows, apply_shadows),
    Variant("contrast", draw_contrast, apply_contrast),
)
