"""Length-control reward over ONE prompt group (docs/rewards.md, "Length-control reward")."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def length_bonus(
    accuracies: Sequence[float] | np.ndarray,
    lengths: Sequence[int] | np.ndarray,
    *,
    len_min: int,
    len_max: int,
    bonus: float,
    acc_threshold: float = 0.1,
) -> np.ndarray:
    """Per-completion bonus for the G completions of one prompt group.

    Among completions with accuracy > acc_threshold, and only if there is more than one of them, each
    whose length (tokens, EOS included) lies in [len_min, len_max] gets +bonus; all others get 0.
    NaN accuracies count as not correct. Call it once per group, never on a whole batch.
    """
    acc = np.asarray(accuracies, dtype=np.float64).reshape(-1)
    length = np.asarray(lengths, dtype=np.float64).reshape(-1)
    if acc.shape != length.shape:
        raise ValueError(f"accuracies ({acc.size}) and lengths ({length.size}) must have one entry per completion")
    if len_min > len_max:
        raise ValueError(f"len_min ({len_min}) must be <= len_max ({len_max})")
    correct = acc > acc_threshold
    out = np.zeros(acc.shape, dtype=np.float64)
    if np.count_nonzero(correct) > 1:
        in_range = (length >= len_min) & (length <= len_max)
        out[correct & in_range] = bonus
    return out
