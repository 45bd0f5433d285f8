"""T-GRPO temporal reward (Video-R1), computed PER PROMPT GROUP (docs/rewards.md, "Temporal reward").

The public Video-R1 trainer averages accuracy over the whole device batch, which is only right at one
prompt per device; here every row of the matrices is one prompt and gets its own p and p~.
"""

from __future__ import annotations

import numpy as np


def temporal_bonus(
    acc_ordered: np.ndarray,
    acc_shuffled: np.ndarray,
    *,
    alpha: float,
    mu: float,
    acc_threshold: float = 0.1,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Temporal bonus for the ordered completions of N prompts.

    acc_ordered: [N, G] accuracies of the completions on ordered frames.
    acc_shuffled: [N, Gs] accuracies on shuffled frames (Gs may be 0). NaN marks a missing entry; a row
    with no finite entry (an image prompt, no shuffled branch) gets no bonus.
    Returns (bonus [N, G], p [N], p_shuffled [N]) where p / p_shuffled are the per-prompt mean
    accuracies (NaN where the row has no entries). For each prompt with p >= mu * p_shuffled, every
    ordered completion with accuracy > acc_threshold gets +alpha.
    """
    ordered = np.asarray(acc_ordered, dtype=np.float64)
    shuffled = np.asarray(acc_shuffled, dtype=np.float64)
    if ordered.ndim != 2:
        raise ValueError(f"acc_ordered must be [N, G], got shape {ordered.shape}")
    if shuffled.ndim == 1 and shuffled.size == 0:
        shuffled = shuffled.reshape(ordered.shape[0], 0)
    if shuffled.ndim != 2 or shuffled.shape[0] != ordered.shape[0]:
        raise ValueError(
            f"acc_shuffled must be [N, Gs] with N = {ordered.shape[0]} prompts, got shape {shuffled.shape}"
        )
    p = _row_nanmean(ordered)
    p_shuffled = _row_nanmean(shuffled)
    with np.errstate(invalid="ignore"):
        earned = np.isfinite(p_shuffled) & np.isfinite(p) & (p >= mu * p_shuffled)
        correct = ordered > acc_threshold
    bonus = np.where(earned[:, None] & correct, float(alpha), 0.0)
    return bonus, p, p_shuffled


def _row_nanmean(values: np.ndarray) -> np.ndarray:
    finite = np.isfinite(values)
    counts = finite.sum(axis=1)
    sums = np.where(finite, values, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
