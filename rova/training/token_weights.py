"""TW-GRPO's token weights (longmalongma/TW-GRPO @aa529ff, `compute_token_importance_kl_logs_uniform`), chunked.

For one prompt group (its G completions on one branch) and completion position t, with p_g,t the policy's
full-vocabulary log-probs (positions past completion g's end: the uniform distribution, -log V everywhere):

    m_t  = mean_g p_g,t                      d = clamp(m_t - p_g,t, -11, 11)
    kl_t = mean_g sum_v (exp(d) - d - 1)     n_t = (kl_t - min_t kl) / (max_t kl - min_t kl + 1e-8)
    w_t  = 1 + (alpha - 1) * n_t             (shared by the group's G completions, times the completion mask)

Positions where the group disagrees most weigh up to alpha; the loss is the token-level clipped surrogate times w_t.

rova's choices (docs: README, conf/objective/tw_grpo.yaml):
- The weights carry no gradient (the release keeps it: a quirk) and are computed once per rollout, by a no-grad
  pass after generation (rova.training.trainer: `_token_weights`), not in every loss pass.
- No [B*G, L, V] tensor is ever built: one group at a time, and within it `chunk` positions at a time, so the
  largest tensor is [G, chunk, V] (`chunk_positions` keeps it near CHUNK_ELEMENTS). The release materialises the
  log-probs of every row, position and vocabulary entry at once.
- t runs over the group's own positions: 0 .. (its longest completion) - 1. The release trains one prompt per
  device (per_device_train_batch_size 1), so its padded length is that group's; in rova's loss batch the rows of
  other groups pad further, and those all-uniform positions (kl 0) would move min_t kl. They are left out.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import torch

# The most elements of one [G, chunk, V] tensor (64 MiB in float32); a few live at once.
CHUNK_ELEMENTS = 1 << 24
KL_CLAMP = 11.0
NORM_EPS = 1e-8


def chunk_positions(group_size: int, vocab_size: int, budget: int = CHUNK_ELEMENTS) -> int:
    """Positions per chunk so that a [group_size, chunk, vocab_size] tensor holds at most `budget` elements (>= 1)."""
    return max(1, budget // max(1, group_size * vocab_size))


@torch.no_grad()
def group_token_kl(
    log_probs_at: Callable[[int, int], torch.Tensor],
    lengths: Sequence[int] | torch.Tensor,
    num_positions: int,
    chunk: int,
) -> torch.Tensor:
    """kl_t of one group for t in [0, num_positions), computed `chunk` positions at a time.

    `log_probs_at(start, end)` returns the group's full-vocabulary log-probs at positions [start, end):
    [G, end - start, V]. `lengths[g]` is completion g's length; its positions >= lengths[g] read the uniform
    distribution. Returns [num_positions] in the dtype of the log-probs.
    """
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    lengths = torch.as_tensor(lengths)
    values = []
    for start in range(0, num_positions, chunk):
        end = min(start + chunk, num_positions)
        logps = log_probs_at(start, end)
        lengths = lengths.to(logps.device)
        positions = torch.arange(start, end, device=logps.device)
        past_end = (positions.unsqueeze(0) >= lengths.unsqueeze(1)).unsqueeze(-1)  # [G, c, 1]
        logps = logps.masked_fill(past_end, -math.log(logps.size(-1)))
        diff = (logps.mean(dim=0, keepdim=True) - logps).clamp_(-KL_CLAMP, KL_CLAMP)
        del logps
        per_row = diff.exp().sub_(diff).sub_(1.0).sum(dim=-1)  # [G, c]
        values.append(per_row.mean(dim=0))
    if not values:
        return torch.zeros(0)
    return torch.cat(values)


def normalised_weights(kl: torch.Tensor, alpha: float) -> torch.Tensor:
    """w_t = 1 + (alpha - 1) * (kl_t - min kl) / (max kl - min kl + 1e-8): 1 everywhere when every kl_t is equal."""
    if kl.numel() == 0:
        return kl.clone()
    low, high = kl.min(), kl.max()
    return 1.0 + (alpha - 1.0) * (kl - low) / (high - low + NORM_EPS)


def group_token_weights(
    log_probs_at: Callable[[int, int], torch.Tensor],
    lengths: Sequence[int] | torch.Tensor,
    alpha: float,
    chunk: int,
) -> torch.Tensor:
    """The weights w_t of one group over its positions 0 .. max(lengths) - 1: [max(lengths)] (before the mask)."""
    num_positions = int(max((int(n) for n in torch.as_tensor(lengths).tolist()), default=0))
    return normalised_weights(group_token_kl(log_probs_at, lengths, num_positions, chunk), alpha)


def lm_head_log_probs(hidden: torch.Tensor, lm_head: Callable[[torch.Tensor], torch.Tensor],
                      temperature: float = 1.0) -> Callable[[int, int], torch.Tensor]:
    """`log_probs_at` over final hidden states [G, L, H]: project positions [start, end) only, in float32."""

    def log_probs_at(start: int, end: int) -> torch.Tensor:
        logits = lm_head(hidden[:, start:end]).float()
        if temperature != 1.0:
            logits = logits / temperature
        return torch.log_softmax(logits, dim=-1)

    return log_probs_at


__all__ = ["CHUNK_ELEMENTS", "chunk_positions", "group_token_kl", "group_token_weights", "lm_head_log_probs",
           "normalised_weights"]
