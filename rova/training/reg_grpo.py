"""DeepVideo-R1's Reg-GRPO loss (arXiv 2506.07464, Eq. 6-9 as rova reads them; ../shared/docs/methods.md).

Regress the policy's implicit advantage onto the group advantage, no clip, no min:

    rho_i   = log pi_theta(o_i|q) - log pi_ref(o_i|q)       sum over the completion's tokens (option: mean)
    A_hat_i = beta * (rho_i - mean_j rho_j)                  j over the completions of i's group
    loss    = mean over groups of (1/G) sum_i (A_i - A_hat_i)^2

A_i is rova's group-normalised advantage (objective.scale_rewards). pi_ref is the reference model or the old
(rollout) policy (objective.regression_reference). A completion whose mask is empty (filtered by
memory.variance_filter, or truncated under objective.mask_truncated_completions) leaves its group: it is neither a
term of the sum nor of the group mean; a group left with no completion leaves the mean over groups.

Every group must be whole in the micro-batch (the group mean is over its G completions): each row carries its group
id, and with several micro-batches per rollout the trainer shuffles whole groups (rova.training.group_shuffle);
rova.config.schema checks at compose time that per_device_train_batch_size is a multiple of num_generations.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

LOG_RATIOS = ("sum", "mean")
REFERENCES = ("ref", "old")


@dataclass
class RegressionTerms:
    """What the loss is made of, per row ([N]); for the metrics."""

    log_ratio: torch.Tensor        # rho_i
    implicit_advantage: torch.Tensor  # A_hat_i
    active: torch.Tensor           # bool: the row has tokens in the loss


def reg_grpo_loss(
    per_token_logps: torch.Tensor,
    ref_per_token_logps: torch.Tensor,
    mask: torch.Tensor,
    advantages: torch.Tensor,
    group_ids: torch.Tensor,
    beta: float,
    log_ratio: str = "sum",
) -> tuple[torch.Tensor, RegressionTerms]:
    """The Reg-GRPO loss of a micro-batch: per_token_logps [N, T] (with grad), ref_per_token_logps [N, T], mask
    [N, T], advantages [N], group_ids [N] (any integers; rows of one group share one). Returns (loss, terms)."""
    if log_ratio not in LOG_RATIOS:
        raise ValueError(f"log_ratio must be one of {LOG_RATIOS}, got {log_ratio!r}")
    mask = mask.to(per_token_logps.dtype)
    tokens = mask.sum(dim=-1)
    rho = ((per_token_logps - ref_per_token_logps) * mask).sum(dim=-1)
    if log_ratio == "mean":
        rho = rho / tokens.clamp(min=1.0)
    active = tokens > 0
    weight = active.to(rho.dtype)
    _, group = torch.unique(group_ids, return_inverse=True)
    num_groups = int(group.max().item()) + 1 if group.numel() else 0
    members = torch.zeros(num_groups, dtype=rho.dtype, device=rho.device).index_add(0, group, weight)
    rho_sum = torch.zeros(num_groups, dtype=rho.dtype, device=rho.device).index_add(0, group, rho * weight)
    group_mean = rho_sum / members.clamp(min=1.0)
    implicit = beta * (rho - group_mean[group])
    squared = (advantages.to(rho.dtype) - implicit).pow(2) * weight
    per_group = torch.zeros(num_groups, dtype=rho.dtype, device=rho.device).index_add(0, group, squared)
    per_group = per_group / members.clamp(min=1.0)
    present = members > 0
    # With no active row the loss is a zero that still reaches the graph (every rank runs backward).
    loss = per_group[present].mean() if bool(present.any()) else (rho * 0.0).sum()
    return loss, RegressionTerms(rho.detach(), implicit.detach(), active)


__all__ = ["LOG_RATIOS", "REFERENCES", "RegressionTerms", "reg_grpo_loss"]
