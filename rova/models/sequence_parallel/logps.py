"""Per-token log-probabilities (and entropies) of completions, each row's sequence split over an SP group.

`sharded_completion_logps` is the sequence-parallel twin of the trainer's batched log-prob pass: the same
inputs (left-padded prompts + right-padded completions, per-row visual tensors), the same outputs ([B, C]
log-probs of the completion tokens, 0 where the completion mask is 0, and their entropies), computed one row at a
time with the row's left padding cut (rova.models.sequence_parallel.sharding explains why). The model must carry
TRL's fused LM head (`add_fused_lm_head`), which scores pre-shifted labels (`shift_labels`) of the chunk.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable

import torch

from rova.models.sequence_parallel.groups import SequenceParallel
from rova.models.sequence_parallel.sharding import gather_sequence, shard_plan, sharded_language_model
from rova.models.sequence_parallel.vision import VisionCache, family_of_inner, split_vision_tower

IGNORE = -100


def row_sequence(ids: torch.Tensor, mask: torch.Tensor, completion_length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One row without its left padding: (tokens [L], completion mask [C]); the completion keeps its right padding
    (masked), so every row scores exactly `completion_length` positions."""
    prompt, completion = ids[: -completion_length], ids[-completion_length:]
    prompt = prompt[mask[: -completion_length].bool()]
    return torch.cat([prompt, completion]), mask[-completion_length:]


def shift_labels(tokens: torch.Tensor, completion_mask: torch.Tensor, padded: int) -> torch.Tensor:
    """Labels of the end-padded sequence, pre-shifted: position t holds token t+1 where t predicts a completion
    token the mask keeps, IGNORE elsewhere."""
    length, count = tokens.numel(), completion_mask.numel()
    labels = torch.full((padded,), IGNORE, dtype=tokens.dtype, device=tokens.device)
    target = tokens[length - count:].masked_fill(completion_mask == 0, IGNORE)
    labels[length - count - 1: length - 1] = target
    return labels


def row_key(visual_row: dict) -> tuple:
    """The identity of a row's clip: its pixel tensors (the rows of one view share them, rova.inference.visual)."""
    return tuple(id(v) for k, v in sorted(visual_row.items()) if k.startswith("pixel_values"))


@contextmanager
def sharded_model(inner: torch.nn.Module, sp: SequenceParallel, cache: VisionCache | None = None,
                  step_cache: VisionCache | None = None):
    """Inside the block a forward of the VL model whose inner model is `inner` (the module holding `visual` and
    `language_model`) runs sequence-parallel: its clips encoded MR-SP, its decoder on this rank's chunk."""
    family = family_of_inner(inner)
    with sharded_language_model(inner.language_model, sp, family.decoder_visual_kwargs), \
            split_vision_tower(inner.visual, sp, cache if cache is not None else VisionCache(), step_cache,
                               family.per_token_feature_fields):
        yield


def sharded_completion_logps(
    model, inner: torch.nn.Module, sp: SequenceParallel, ids: torch.Tensor, mask: torch.Tensor,
    completion_length: int, visual_rows: list[dict], row_inputs: Callable[[torch.Tensor, dict], dict],
    compute_entropy: bool = False, step_cache: VisionCache | None = None, cache: VisionCache | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """[B, C] log-probs (and entropies) of the completion tokens of the padded batch `ids`/`mask`.

    `model` is called (so DDP / DeepSpeed wrappers see the forward) with `row_inputs(tokens [1, L], visual_row)`
    plus the chunk's shifted labels; `inner` is its VL model (its decoder and vision tower are wrapped for the
    call). A clip shown by several rows is encoded once per call (once per step with `step_cache`, see
    rova.models.sequence_parallel.vision). Every rank of the group must call this with the same batch."""
    logps, entropies = [], []
    cache = cache if cache is not None else VisionCache()
    for row in range(ids.size(0)):
        tokens, completion_mask = row_sequence(ids[row], mask[row], completion_length)
        plan = shard_plan(tokens.numel(), sp)
        labels = shift_labels(tokens, completion_mask, plan.padded)[plan.start: plan.end]
        cache.row_key = row_key(visual_rows[row])
        with sharded_model(inner, sp, cache, step_cache):
            out = model(**row_inputs(tokens[None], visual_rows[row]), shift_labels=labels[None], fused_lm_head=True)
        span = slice(tokens.numel() - completion_length - 1, tokens.numel() - 1)
        logps.append(gather_sequence(out.log_probs[0], sp)[span])
        if compute_entropy:
            entropies.append(gather_sequence(out.entropy[0], sp)[span])
    return torch.stack(logps), (torch.stack(entropies) if compute_entropy else None)


def all_reduce_sum(values: torch.Tensor, sp: SequenceParallel) -> torch.Tensor:
    """Sum over the group, with gradient (the backward sums every rank's gradient too)."""
    import torch.distributed.nn.functional as dist_fn

    return dist_fn.all_reduce(values.contiguous(), group=sp.group)


def sharded_completion_logits(
    model, inner: torch.nn.Module, sp: SequenceParallel, ids: torch.Tensor, mask: torch.Tensor,
    completion_length: int, visual_rows: list[dict], row_inputs: Callable[[torch.Tensor, dict], dict],
    step_cache: VisionCache | None = None,
) -> torch.Tensor:
    """[B, C, V] logits that predict the completion tokens (the KL-consistency passes need whole distributions).

    Each rank projects only the completion positions inside its chunk (`logits_to_keep` as indices), places them
    in a [C, V] buffer at their offsets and the group sums the buffers: a rank never holds more than the
    completion's logits, however long the prompt."""
    rows = []
    cache = VisionCache()
    for row in range(ids.size(0)):
        tokens, _ = row_sequence(ids[row], mask[row], completion_length)
        plan = shard_plan(tokens.numel(), sp)
        first = tokens.numel() - completion_length - 1  # the position predicting the first completion token
        low = max(first, plan.start)
        positions = torch.arange(low, max(low, min(first + completion_length, plan.end)), device=ids.device)
        cache.row_key = row_key(visual_rows[row])
        with sharded_model(inner, sp, cache, step_cache):
            out = model(**row_inputs(tokens[None], visual_rows[row]), logits_to_keep=positions - plan.start)
        local = out.logits[0]
        buffer = local.new_zeros(completion_length, local.shape[-1]).index_add(0, positions - first, local)
        rows.append(all_reduce_sum(buffer, sp))
    return torch.stack(rows)


def sharded_label_logp_sum(model, inner: torch.nn.Module, sp: SequenceParallel, tokens: torch.Tensor,
                           labels: torch.Tensor, visual_row: dict, row_inputs: Callable[[torch.Tensor, dict], dict]
                           ) -> torch.Tensor:
    """Sum of log p(label t | tokens < t) over one unpadded row's label positions (labels IGNORE elsewhere), the
    row's sequence split over the group: the SFT loss's numerator. Same on every rank; gradient exact."""
    plan = shard_plan(tokens.numel(), sp)
    shifted = torch.full((plan.padded,), IGNORE, dtype=labels.dtype, device=labels.device)
    shifted[: tokens.numel() - 1] = labels[1:]
    with sharded_model(inner, sp):
        out = model(**row_inputs(tokens[None], visual_row), shift_labels=shifted[None, plan.start: plan.end],
                    fused_lm_head=True)
    return all_reduce_sum(out.log_probs.sum(), sp)
