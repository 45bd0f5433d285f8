"""MR-SP vision encoding: each clip is encoded once per sequence-parallel group, its frames split over the ranks.

Inside a sharded forward the vision tower (the VL model's `visual`) is wrapped: the temporal slices of the clips
it is given (one slice = one merged frame pair: t*h*w patches of a (t, h, w) grid are t slices of h*w) are cut
into N contiguous parts of about equal patch counts, rank r encodes part r as its own grids, and the parts'
outputs (the merged embeddings and, for Qwen3-VL, every DeepStack feature) are gathered across the group in
order, with gradient. Both families attend within a temporal slice only (the tower's attention segments are per
frame pair), so the gathered embeddings equal the whole clip's encoding; tests/models/test_sequence_parallel.py
checks it.

Encodings are kept in a `VisionCache` for the life of one pass (the G rows of a prompt share their clip's pixel
tensor, so the clip is encoded once, not once per row), and across the passes of a training step when the tower
has nothing to train (`model.freeze_vision`, no adapter inside it): then rollout scoring, old-policy, reference
and policy passes all reuse the first encoding. The owner clears it when the step's clips change.
"""

from __future__ import annotations

import copy
import functools
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch

from rova.models.sequence_parallel.groups import SequenceParallel


def slice_parts(grid: torch.Tensor, size: int) -> list[list[tuple[int, int, int, int]]] | None:
    """For each rank, its (clip, first slice, slice count, patches per slice) runs, in global order; None when
    there are fewer temporal slices than ranks (then every rank encodes everything)."""
    slices = [(clip, t, int(h * w)) for clip, (frames, h, w) in enumerate(grid.tolist()) for t in range(frames)]
    if len(slices) < size:
        return None
    total = sum(p for _, _, p in slices)
    bounds, acc, part = [0], 0, 1
    for i, (_, _, patches) in enumerate(slices):
        acc += patches
        left = len(slices) - (i + 1)  # slices after this one
        # Close the open part after slice i once the parts so far hold part/N of the patches, or when each later
        # part needs one of the slices left; at most one part per slice, so no part is empty.
        if part < size and left >= size - part and (acc * size >= part * total or left == size - part):
            bounds.append(i + 1)
            part += 1
    bounds.append(len(slices))
    parts = []
    for r in range(size):
        runs: list[tuple[int, int, int, int]] = []
        for clip, t, patches in slices[bounds[r]: bounds[r + 1]]:
            if runs and runs[-1][0] == clip:
                c, first, count, p = runs[-1]
                runs[-1] = (c, first, count + 1, p)
            else:
                runs.append((clip, t, 1, patches))
        parts.append(runs)
    return parts


def _gather_rows(local: torch.Tensor, counts: list[int], sp: SequenceParallel) -> torch.Tensor:
    """Concatenate every rank's `local` [count_r, H] in rank order (padded to the largest for the collective)."""
    import torch.distributed.nn.functional as dist_fn

    most = max(counts)
    padded = torch.cat([local, local.new_zeros(most - local.shape[0], *local.shape[1:])]) if local.shape[0] < most else local
    parts = dist_fn.all_gather(padded.contiguous(), group=sp.group)
    return torch.cat([part[:count] for part, count in zip(parts, counts)])


@dataclass
class VisionCache:
    """Encodings of the clips met so far, keyed by the pixel tensor (rows of one clip share one tensor object)."""

    entries: dict = field(default_factory=dict)
    encoded_patches: int = 0  # patches this rank ran through the tower (benchmarks and tests read it)
    # What the tower is encoding now: set by the caller to the identity of the row's own pixel tensors (the
    # tensor the tower receives is a per-forward copy); None: no reuse.
    row_key: tuple | None = None

    def clear(self) -> None:
        self.entries.clear()


def family_of_inner(inner: torch.nn.Module):
    """The model family whose inner VL model class `inner` is (rova.models.families)."""
    from rova.models.families import family_names, get_family

    for name in family_names():
        family = get_family(name)
        if isinstance(inner, family.inner_model_classes()):
            return family
    raise TypeError(f"{type(inner).__name__} is the inner model of no known family")


def _tower_trains(visual: torch.nn.Module) -> bool:
    return any(p.requires_grad for p in visual.parameters()) or any(
        "lora" in name.lower() for name, _ in visual.named_modules())


def _split_forward(visual: torch.nn.Module, upstream, sp: SequenceParallel, cache: VisionCache,
                   step_cache: VisionCache | None, fields: tuple[str, ...]):
    merge = int(getattr(visual, "spatial_merge_size", 2)) ** 2

    @functools.wraps(upstream)
    def forward(hidden_states, grid_thw=None, **kwargs):
        grid = grid_thw if grid_thw is not None else kwargs.pop("grid_thw")
        reuse = step_cache if (step_cache is not None and not _tower_trains(visual)) else None
        if cache.row_key is None:
            return _encode_split(upstream, sp, hidden_states, grid, merge, kwargs, cache, fields)
        key = (cache.row_key, hidden_states.shape[0], tuple(grid.flatten().tolist()), torch.is_grad_enabled())
        for store in (cache, reuse):
            if store is not None and key in store.entries:
                return copy.copy(store.entries[key])  # the caller rewrites fields of what it gets (a split tuple)
        out = _encode_split(upstream, sp, hidden_states, grid, merge, kwargs, cache, fields)
        for store in (cache, reuse):
            if store is not None:
                store.entries[key] = copy.copy(out)
        return out

    return forward


def _encode_split(upstream, sp, pixels, grid, merge, kwargs, cache: VisionCache, fields: tuple[str, ...]):
    parts = slice_parts(grid, sp.size)
    if parts is None:
        cache.encoded_patches += int(pixels.shape[0])
        return upstream(pixels, grid_thw=grid, **kwargs)
    starts = torch.cat([grid.new_zeros(1), grid.prod(-1).cumsum(0)]).tolist()
    mine = parts[sp.rank]
    rows = [pixels[starts[c] + t * p: starts[c] + (t + n) * p] for c, t, n, p in mine]
    local_grid = torch.tensor([[n, *grid[c, 1:].tolist()] for c, t, n, p in mine], dtype=grid.dtype, device=grid.device)
    local_pixels = torch.cat(rows)
    cache.encoded_patches += int(local_pixels.shape[0])
    out = upstream(local_pixels, grid_thw=local_grid, **kwargs)
    counts = [sum(n * p for _, _, n, p in runs) // merge for runs in parts]
    out.pooler_output = _gather_rows(out.pooler_output, counts, sp)
    for name in fields:  # the family's per-token features (Qwen3-VL's DeepStack), one tensor per layer
        features = getattr(out, name, None)
        if features:
            setattr(out, name, [_gather_rows(f, counts, sp) for f in features])
    out.last_hidden_state = None  # this rank's slices only: nothing downstream reads it
    return out


@contextmanager
def split_vision_tower(visual: torch.nn.Module, sp: SequenceParallel, cache: VisionCache,
                       step_cache: VisionCache | None = None, fields: tuple[str, ...] = ()):
    """Inside the block, `visual` encodes its share of the frames and returns the group's gathered encoding
    (`fields`: the family's per_token_feature_fields, gathered like the embeddings)."""
    visual.forward = _split_forward(visual, type(visual).forward.__get__(visual), sp, cache, step_cache, fields)
    try:
        yield
    finally:
        del visual.forward


# (pixels, grid, clip index) keys of a forward's inputs (rova.inference.visual.SHARED_MODALITIES)
_MODALITIES = (("pixel_values_videos", "video_grid_thw", "video_clip_index"),
               ("pixel_values", "image_grid_thw", "image_clip_index"))


def _tower_key(pixels: torch.Tensor, grid: torch.Tensor) -> tuple:
    return int(pixels.shape[0]), tuple(grid.flatten().tolist())


def encode_for_replay(inner: torch.nn.Module, sp: SequenceParallel, inputs: dict, cache: VisionCache) -> dict:
    """What the vision tower of `inner` will be asked to encode in a forward over `inputs` (model inputs, with or
    without shared vision encoding's clip indices), encoded MR-SP by every rank of the group, keyed for
    `replay_vision_tower`. Runs without gradient (generation)."""
    from rova.models.vision_sharing import first_uses

    encodings = {}
    visual = inner.visual
    fields = family_of_inner(inner).per_token_feature_fields
    with torch.no_grad(), split_vision_tower(visual, sp, cache, fields=fields):
        for pixel_key, grid_key, index_key in _MODALITIES:
            if pixel_key not in inputs:
                continue
            pixels, grid = inputs[pixel_key].type(visual.dtype), inputs[grid_key]
            if inputs.get(index_key) is not None:  # shared: the tower sees each distinct clip once
                grid = grid[torch.as_tensor(first_uses(list(inputs[index_key])), device=grid.device)]
            encodings[_tower_key(pixels, grid)] = visual(pixels, grid_thw=grid)
    return encodings


@contextmanager
def replay_vision_tower(visual: torch.nn.Module, encodings: dict):
    """Inside the block, `visual` hands back the group's encodings (encode_for_replay) instead of encoding: one
    rank then generates from the clips every rank of its group encoded a share of."""
    def forward(hidden_states, grid_thw=None, **kwargs):
        key = _tower_key(hidden_states, grid_thw if grid_thw is not None else kwargs["grid_thw"])
        if key not in encodings:
            from rova.errors import RovaError

            raise RovaError(f"sequence parallelism: the vision tower was asked for clips ({key[0]} patches) that the "
                            "group did not encode; encode_for_replay must see the same inputs as the forward")
        return copy.copy(encodings[key])

    visual.forward = forward
    try:
        yield
    finally:
        del visual.forward
