"""Camera shake: a Gaussian-smoothed random walk of translation, roll and zoom, with optional motion
blur along the motion (ROVA; ImageNet-P translate/rotate/scale).

Each of the four motion channels reaches at most its severity amplitude, and moves at most half of
it between two frames (see `smooth_walk`). Borders are filled by reflection, as a real camera would
still see scene there, rather than with black bars that would give the corruption away.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from rova.corruption.base import Params, Variant, severity_value, smooth_walk

TRANSLATION = (0.01, 0.02, 0.04, 0.06, 0.08)  # fraction of the frame size (x of W, y of H)
ROLL_DEG = (0.5, 1.0, 2.0, 3.0, 5.0)
ZOOM = (0.01, 0.02, 0.03, 0.04, 0.06)
EXPOSURE = 0.5  # fraction of the inter-frame motion smeared into one frame
MAX_BLUR_PX = 11  # longer line kernels make OpenCV switch to a slow DFT path


def draw_shake(rng: np.random.Generator, severity: int, clip: np.ndarray, options: dict[str, Any]) -> Params:
    t, h, w, _ = clip.shape
    walk = smooth_walk(rng, t, 4)
    shift = severity_value(TRANSLATION, severity)
    return {
        "translation": shift,
        "roll_amplitude_deg": severity_value(ROLL_DEG, severity),
        "zoom_amplitude": severity_value(ZOOM, severity),
        "motion_blur": bool(options["motion_blur"]),
        "exposure": EXPOSURE,
        "max_blur_px": MAX_BLUR_PX,
        # the camera trajectory, one value per frame
        "dx": [float(v) for v in walk[:, 0] * shift * w],
        "dy": [float(v) for v in walk[:, 1] * shift * h],
        "roll_deg": [float(v) for v in walk[:, 2] * severity_value(ROLL_DEG, severity)],
        "zoom": [float(v) for v in walk[:, 3] * severity_value(ZOOM, severity)],
    }


def frame_matrices(h: int, w: int, params: Params) -> list[np.ndarray]:
    """The 2x3 affine warp of every frame: roll and zoom about the centre, then the translation."""
    centre = ((w - 1) / 2, (h - 1) / 2)
    mats = []
    for dx, dy, roll, zoom in zip(params["dx"], params["dy"], params["roll_deg"], params["zoom"]):
        m = cv2.getRotationMatrix2D(centre, roll, 1.0 + zoom)
        m[0, 2] += dx
        m[1, 2] += dy
        mats.append(m)
    return mats


def blur_kernel(vx: float, vy: float, params: Params) -> np.ndarray | None:
    """A normalised anti-aliased line kernel along (vx, vy) px of motion, or None if under ~1.5 px."""
    length = min(float(np.hypot(vx, vy)) * params["exposure"], float(params["max_blur_px"]))
    if length < 1.5:
        return None
    size = int(np.ceil(length)) | 1
    c = (size - 1) / 2
    ux, uy = vx / np.hypot(vx, vy), vy / np.hypot(vx, vy)
    half = (length - 1) / 2
    kernel = np.zeros((size, size), np.float32)
    p0 = np.rint(np.array([c - half * ux, c - half * uy]) * 16).astype(np.int32)
    p1 = np.rint(np.array([c + half * ux, c + half * uy]) * 16).astype(np.int32)
    cv2.line(kernel, tuple(int(v) for v in p0), tuple(int(v) for v in p1), 1.0, 1, cv2.LINE_AA, shift=4)
    return kernel / kernel.sum()


def source_padding(mats: list[np.ndarray], h: int, w: int) -> int:
    """How far (px, plus the bilinear neighbour) any frame samples outside the source frame."""
    corners = np.array([[0, 0, 1], [w - 1, 0, 1], [0, h - 1, 1], [w - 1, h - 1, 1]], np.float64).T
    over = 0.0
    for m in mats:
        src = cv2.invertAffineTransform(m) @ corners
        over = max(over, -src[0].min(), src[0].max() - (w - 1), -src[1].min(), src[1].max() - (h - 1))
    return int(np.ceil(over)) + 2 if over > 0 else 0


def apply_shake(clip: np.ndarray, params: Params) -> np.ndarray:
    t, h, w, _ = clip.shape
    # OpenCV warps 4-channel uint8 images about twice as fast as 3-channel ones.
    rgba = cv2.cvtColor(clip.reshape(t * h, w, 3), cv2.COLOR_RGB2RGBA).reshape(t, h, w, 4)
    warped = np.empty_like(rgba)
    mats = frame_matrices(h, w, params)
    # warpAffine's per-pixel border handling is slow (7-9 ms per clip instead of 4): sample from a
    # reflect-padded copy instead, so that every sample lands inside the source. Same pixels.
    pad = source_padding(mats, h, w)
    pad = pad if pad < min(h, w) else 0
    for i in range(t):
        src, m = rgba[i], mats[i]
        if pad:
            src = cv2.copyMakeBorder(src, pad, pad, pad, pad, cv2.BORDER_REFLECT_101)
            m = m.copy()
            m[:, 2] -= m[:, :2] @ np.array([pad, pad], np.float64)
        cv2.warpAffine(src, m, (w, h), dst=warped[i], flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    if params["motion_blur"] and t > 1:
        dx, dy = np.asarray(params["dx"]), np.asarray(params["dy"])
        # motion around frame i: centred difference inside the clip, one-sided at its ends
        vx, vy = np.gradient(dx), np.gradient(dy)
        for i in range(t):
            kernel = blur_kernel(float(vx[i]), float(vy[i]), params)
            if kernel is not None:
                cv2.filter2D(warped[i], -1, kernel, dst=rgba[i], borderType=cv2.BORDER_REFLECT_101)
                warped[i] = rgba[i]
    return cv2.cvtColor(warped.reshape(t * h, w, 4), cv2.COLOR_RGBA2RGB).reshape(clip.shape)


VARIANTS = (
    Variant("camera_shake", draw_shake, apply_shake, moving=True),
)
