"""DAPO's soft overlong punishment (arXiv 2503.14476, Eq. 13; docs/rewards.md, "Soft overlong punishment").

With L_max the longest completion the rollout may produce and L_cache the punishment buffer before it:

    R_length(y) = 0                                  |y| <= L_max - L_cache
                = ((L_max - L_cache) - |y|) / L_cache   L_max - L_cache < |y| <= L_max
                = -1                                 |y| > L_max

so a completion pays nothing up to the expected length L_max - L_cache, then a penalty growing linearly to -1 at
L_max. The weight `reward.w_overlong` plays verl's `overlong_buffer.penalty_factor`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def soft_overlong_punishment(lengths: Sequence[int] | np.ndarray, *, max_length: int, buffer: int) -> np.ndarray:
    """R_length of each completion length (tokens, EOS included), in [-1, 0]; same shape as `lengths`."""
    if buffer <= 0:
        raise ValueError(f"buffer (L_cache) must be > 0, got {buffer}")
    if buffer >= max_length:
        raise ValueError(f"buffer (L_cache, {buffer}) must be < max_length (L_max, {max_length}): the expected "
                         "length L_max - L_cache would be <= 0")
    length = np.asarray(lengths, dtype=np.float64)
    expected = max_length - buffer
    ramp = (expected - length) / buffer
    return np.where(length <= expected, 0.0, np.where(length <= max_length, ramp, -1.0))
