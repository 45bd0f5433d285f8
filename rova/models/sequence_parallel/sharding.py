"""A sharded forward: one sequence's language-model pass split over the ranks of a sequence-parallel group.

Every rank of the group calls the model with the WHOLE row (token ids and visual inputs): the model embeds the
tokens, encodes the clip (split over the ranks by rova.models.sequence_parallel.vision when installed), merges the
clip's features into the embeddings and computes the M-RoPE positions of the whole sequence, exactly as without
sequence parallelism. Only then, at the language model's entrance, `sharded_language_model` keeps this rank's
chunk of the sequence: the embeddings, the position ids (kept global: 4 rows, the text positions first, which
Ulysses gathers to order causal attention) and, for Qwen3-VL, the DeepStack mask and features of the visual
tokens inside the chunk (the family's `decoder_visual_kwargs`). The decoder layers then run on the chunk with Ulysses attention, and the chunk's hidden
states come back; TRL's fused LM head scores them against pre-shifted labels (`shift_labels`), and
`gather_sequence` joins the chunks' per-token values across the group, with gradient.

Gradients: each rank computes the same loss from the gathered values; the gather's backward sums the ranks'
gradients of each chunk (N equal terms), and data parallelism averages over all W = N x D processes (1/N of
each), so each parameter's gradient equals the unsharded one: nothing is counted N times.

A sharded sequence has no padding before its last real token (Ulysses attention takes no mask: causality comes
from the position order), so a padded batch is run one row at a time with its left padding cut; the sequence is
padded at its END to a multiple of N, which no real token attends to.
"""

from __future__ import annotations

import functools
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from rova.models.sequence_parallel.groups import SequenceParallel, ulysses_active


@dataclass(frozen=True)
class ShardPlan:
    """How one sequence of `length` tokens is cut: padded to `padded` (a multiple of the group size) and this
    rank's chunk [start, end)."""

    length: int
    padded: int
    start: int
    end: int

    @property
    def chunk(self) -> int:
        return self.end - self.start


def shard_plan(length: int, sp: SequenceParallel) -> ShardPlan:
    padded = -(-length // sp.size) * sp.size
    chunk = padded // sp.size
    return ShardPlan(length, padded, sp.rank * chunk, (sp.rank + 1) * chunk)


def _pad_end(x: torch.Tensor, dim: int, extra: int, value=0) -> torch.Tensor:
    if extra == 0:
        return x
    shape = list(x.shape)
    shape[dim] = extra
    return torch.cat([x, x.new_full(shape, value)], dim=dim)


def global_positions(position_ids: torch.Tensor | None, length: int, padded: int, device) -> torch.Tensor:
    """The 4-row position ids [text; t; h; w] of the whole (end-padded) sequence, batch 1.

    The model's M-RoPE ids come as 3 rows (t, h, w) from its rope index (Qwen2.5-VL) or 4 rows; the text row is
    the token order 0..L-1 (what Ulysses gathers and transformers reads as 'not packed'). The end padding continues
    every row past its last value, so the padded positions come after every real one."""
    text = torch.arange(padded, device=device).view(1, 1, padded)
    if position_ids is None:
        return text.expand(4, 1, padded).clone()
    if position_ids.ndim == 2:
        position_ids = position_ids[None].expand(3, *position_ids.shape)
    if position_ids.shape[0] == 4:
        position_ids = position_ids[1:]
    extra = padded - length
    if extra:
        tail = position_ids.amax(dim=-1, keepdim=True) + torch.arange(1, extra + 1, device=device).view(1, 1, extra)
        position_ids = torch.cat([position_ids, tail.to(position_ids.dtype)], dim=-1)
    return torch.cat([text.to(position_ids.dtype), position_ids], dim=0)


def _sharded_forward(upstream, sp: SequenceParallel, visual_kwargs: tuple[str, str] | None):
    @functools.wraps(upstream)
    def forward(*args, inputs_embeds=None, position_ids=None, attention_mask=None, **kwargs):
        if args or inputs_embeds is None or inputs_embeds.shape[0] != 1:
            raise RuntimeError("a sequence-parallel forward takes one row of input embeddings (batch 1)")
        length = inputs_embeds.shape[1]
        plan = shard_plan(length, sp)
        extra = plan.padded - length
        local = slice(plan.start, plan.end)
        embeds = _pad_end(inputs_embeds, 1, extra)[:, local]
        positions = global_positions(position_ids, length, plan.padded, inputs_embeds.device)[:, :, local]
        mask_key, features_key = visual_kwargs or (None, None)
        if mask_key is not None and kwargs.get(mask_key) is not None:
            mask = _pad_end(kwargs[mask_key], 1, extra, False)
            first = int(mask[:, : plan.start].sum())
            last = first + int(mask[:, local].sum())
            kwargs[mask_key] = mask[:, local]
            features = kwargs.get(features_key)
            kwargs[features_key] = None if features is None else [layer[first:last] for layer in features]
        kwargs["use_cache"] = False
        with ulysses_active():
            return upstream(inputs_embeds=embeds, position_ids=positions, attention_mask=None, **kwargs)

    return forward


@contextmanager
def sharded_language_model(language_model: torch.nn.Module, sp: SequenceParallel,
                           visual_kwargs: tuple[str, str] | None = None):
    """Inside the block, `language_model` (the text decoder of a VL model) runs on this rank's chunk of its input
    and returns the chunk's hidden states. `visual_kwargs`: the family's decoder_visual_kwargs."""
    language_model.forward = _sharded_forward(type(language_model).forward.__get__(language_model), sp,
                                              visual_kwargs)
    try:
        yield
    finally:
        del language_model.forward


def gather_sequence(values: torch.Tensor, sp: SequenceParallel) -> torch.Tensor:
    """Join the group's chunks [..., chunk] into [..., padded] in rank order, keeping the autograd graph (the
    backward sums every rank's gradient of each chunk)."""
    import torch.distributed.nn.functional as dist_fn

    parts = dist_fn.all_gather(values.contiguous(), group=sp.group)
    return torch.cat(parts, dim=-1)
