"""Importance-sampling correction for rollouts sampled by vLLM (TRL 1.16's modes and defaults).

vLLM samples with its own kernels, so its token log-probs differ from the trainer's. The ratio
pi_train / pi_vllm per token or per sequence re-weights the loss; `*_truncate` clamps it, `*_mask` zeroes
ratios outside [clip_min, clip_max].
"""

from __future__ import annotations

import math

import torch

MODES = ("token_truncate", "token_mask", "sequence_truncate", "sequence_mask")


def importance_sampling_ratio(
    old_logps: torch.Tensor,
    sampling_logps: torch.Tensor,
    completion_mask: torch.Tensor,
    mode: str = "sequence_mask",
    clip_min: float | None = None,
    clip_max: float | None = 3.0,
) -> torch.Tensor:
    """[B, T] ratios (token modes) or [B, 1] (sequence modes). Tokens vLLM did not score (NaN) count as ratio 1."""
    if mode not in MODES:
        raise ValueError(f"rollout.vllm_importance_sampling_mode must be one of {MODES}, got {mode!r}")
    diff = torch.nan_to_num((old_logps - sampling_logps) * completion_mask, nan=0.0)
    if mode.startswith("sequence"):
        diff = diff.sum(dim=-1, keepdim=True)
    ratio = torch.exp(diff)
    if mode.endswith("truncate"):
        return torch.clamp(ratio, min=clip_min, max=clip_max)
    low = clip_min if clip_min is not None else -math.inf
    high = clip_max if clip_max is not None else math.inf
    return ratio.masked_fill((ratio < low) | (ratio > high), 0.0)
