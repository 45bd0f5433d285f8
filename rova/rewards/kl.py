"""KL-consistency reward (ROVA, docs/rewards.md "KL-consistency reward").

All logits must already be sliced to the completion span so that position t of `logits_*` and of
`completion_mask` is the same token (**fix**: the public code compares prompt+completion logits against
a completion-only mask). Shapes are checked so a misaligned slice fails loudly.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

ESTIMATORS = ("full", "topk", "sampled")
# Positions are processed in chunks of about this many float32 logits (~128 MiB per temporary), so a
# 152k vocabulary times a long completion never materialises several [B, L, V] float32 copies.
DEFAULT_CHUNK_ELEMENTS = 1 << 25


def _check_shapes(logits_clean: torch.Tensor, logits_corr: torch.Tensor, completion_mask: torch.Tensor) -> None:
    if logits_clean.dim() != 3 or logits_clean.shape != logits_corr.shape:
        raise ValueError(
            f"logits_clean {tuple(logits_clean.shape)} and logits_corr {tuple(logits_corr.shape)} must both be [B, L, V]"
        )
    if tuple(completion_mask.shape) != tuple(logits_clean.shape[:2]):
        raise ValueError(
            f"completion_mask {tuple(completion_mask.shape)} must be [B, L] = {tuple(logits_clean.shape[:2])}: "
            "slice the logits to the completion span before computing the KL"
        )


def _token_kl_from_logits(clean: torch.Tensor, corr: torch.Tensor) -> torch.Tensor:
    """KL(softmax(clean) || softmax(corr)) along the last dim, in float32; 0 * log 0 counts as 0."""
    logp_clean = F.log_softmax(clean.float(), dim=-1)
    logp_corr = F.log_softmax(corr.float(), dim=-1)
    p_clean = logp_clean.exp()
    terms = torch.where(p_clean > 0, p_clean * (logp_clean - logp_corr), torch.zeros_like(p_clean))
    return terms.sum(dim=-1)


def _token_kl(
    clean: torch.Tensor, corr: torch.Tensor, ids: torch.Tensor | None, estimator: str, topk: int
) -> torch.Tensor:
    if estimator == "full":
        return _token_kl_from_logits(clean, corr).clamp_min(0.0)
    if estimator == "topk":
        k = min(topk, clean.shape[-1])
        index = clean.topk(k, dim=-1).indices
        return _token_kl_from_logits(clean.gather(-1, index), corr.gather(-1, index)).clamp_min(0.0)
    # "sampled": the single-sample estimate log P_clean(y_t) - log P_corr(y_t); unbiased, can be < 0.
    clean = clean.float()
    corr = corr.float()
    ids = ids.unsqueeze(-1)
    lp_clean = (clean.gather(-1, ids) - clean.logsumexp(dim=-1, keepdim=True)).squeeze(-1)
    lp_corr = (corr.gather(-1, ids) - corr.logsumexp(dim=-1, keepdim=True)).squeeze(-1)
    return torch.where(torch.isneginf(lp_clean), torch.zeros_like(lp_clean), lp_clean - lp_corr)


@torch.no_grad()
def sequence_kl(
    logits_clean: torch.Tensor,
    logits_corr: torch.Tensor,
    completion_mask: torch.Tensor,
    *,
    estimator: str = "full",
    topk: int = 64,
    sampled_ids: torch.Tensor | None = None,
    chunk_elements: int = DEFAULT_CHUNK_ELEMENTS,
) -> torch.Tensor:
    """Per-sequence KL(P_clean || P_corr): mean over completion tokens of each row, float32, no grad.

    logits_*: [B, L, V] over the completion span; completion_mask: [B, L] (nonzero = completion token).
    estimator: "full" (full vocabulary, the reference), "topk" (both distributions renormalised over the
    clean top-k tokens), or "sampled" (log P_clean - log P_corr of `sampled_ids` [B, L]; may be < 0).
    Rows with no completion token give 0. Returns a float32 tensor [B] on the logits' device.
    """
    if estimator not in ESTIMATORS:
        raise ValueError(f"reward.kl_estimator must be one of {ESTIMATORS}, got {estimator!r}")
    if estimator == "topk" and topk < 1:
        raise ValueError(f"topk must be >= 1, got {topk}")
    _check_shapes(logits_clean, logits_corr, completion_mask)
    if estimator == "sampled":
        if sampled_ids is None:
            raise ValueError("estimator='sampled' needs sampled_ids [B, L] (the completion token ids)")
        if tuple(sampled_ids.shape) != tuple(completion_mask.shape):
            raise ValueError(f"sampled_ids {tuple(sampled_ids.shape)} must be [B, L] = {tuple(completion_mask.shape)}")

    batch, _, vocab = logits_clean.shape
    device = logits_clean.device
    rows, cols = (completion_mask != 0).nonzero(as_tuple=True)
    sums = torch.zeros(batch, dtype=torch.float32, device=device)
    chunk = max(1, chunk_elements // max(vocab, 1))
    for begin in range(0, rows.numel(), chunk):
        r = rows[begin : begin + chunk]
        c = cols[begin : begin + chunk]
        ids = sampled_ids[r, c].long() if estimator == "sampled" else None
        per_token = _token_kl(logits_clean[r, c], logits_corr[r, c], ids, estimator, topk)
        sums.index_add_(0, r, per_token)
    counts = torch.zeros(batch, dtype=torch.float32, device=device)
    counts.index_add_(0, rows, torch.ones_like(rows, dtype=torch.float32))
    return torch.where(counts > 0, sums / counts.clamp_min(1.0), torch.zeros_like(sums))


def kl_reward(kl: torch.Tensor | float, kl_alpha: float) -> torch.Tensor | float:
    """r_kl = exp(-kl_alpha * KL) in [0, 1].

    Negative estimates (possible with the "sampled" estimator) count as 0 KL, +inf gives 0, and NaN
    gives 0 (the worst reward) so one broken row cannot poison its group's advantages.
    """
    if not (kl_alpha >= 0 and math.isfinite(kl_alpha)):
        raise ValueError(f"reward.kl_alpha must be a finite number >= 0, got {kl_alpha!r}")
    if isinstance(kl, torch.Tensor):
        kl = kl.float()
        if kl_alpha == 0:
            reward = torch.ones_like(kl)
        else:
            reward = torch.exp(-kl_alpha * kl.clamp_min(0.0))
        return torch.where(torch.isnan(kl), torch.zeros_like(kl), reward)
    kl = float(kl)
    if math.isnan(kl):
        return 0.0
    if kl_alpha == 0:
        return 1.0
    return math.exp(-kl_alpha * max(kl, 0.0))


def kl_consistency_loss(
    logits_clean: torch.Tensor,
    logits_corr: torch.Tensor,
    completion_mask: torch.Tensor,
    *,
    kl_loss_coef: float = 1.0,
) -> torch.Tensor:
    """Optional auxiliary loss kl_loss_coef * mean_i KL(sg(P_clean) || P_corr), gradient through P_corr only.

    KL_i is the mean over row i's completion tokens (full vocabulary, float32); rows without completion
    tokens are left out of the mean. Returns a scalar that is 0 (still attached to logits_corr's graph)
    when no row has a completion token.
    """
    _check_shapes(logits_clean, logits_corr, completion_mask)
    mask = (completion_mask != 0).float()
    logp_clean = F.log_softmax(logits_clean.detach().float(), dim=-1)
    logp_corr = F.log_softmax(logits_corr.float(), dim=-1)
    p_clean = logp_clean.exp()
    terms = torch.where(p_clean > 0, p_clean * (logp_clean - logp_corr), torch.zeros_like(p_clean))
    per_token = terms.sum(dim=-1) * mask
    counts = mask.sum(dim=-1)
    has_tokens = counts > 0
    per_sequence = per_token.sum(dim=-1) / counts.clamp_min(1.0)
    if not bool(has_tokens.any()):
        return logits_corr.sum() * 0.0
    return kl_loss_coef * per_sequence[has_tokens].mean()
