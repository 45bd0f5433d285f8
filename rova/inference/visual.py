"""Per-row visual tensors of encoded prompts, batched for a forward pass (any model family).

Encoding a prompt with its clip is the family adapter's job (rova.models.families: `family.encode`). Visual
tensors are kept per row (a dict of tensors for one prompt) rather than as one flat batch tensor: TRL shuffles
and splits the generation batch row-wise, and per-row lists survive that; a flat `pixel_values_videos` would be
cut at the wrong patch boundaries.
"""

from __future__ import annotations

import torch

from rova.models.families.base import mm_token_type_ids


def stack_visual(rows: list[dict[str, torch.Tensor]], device: torch.device | str | None = None) -> dict[str, torch.Tensor]:
    """Concatenate per-row visual tensors in row order (the order the model meets the pad tokens)."""
    batch: dict[str, torch.Tensor] = {}
    keys = list(dict.fromkeys(key for row in rows for key in row))
    for key in keys:
        parts = [row[key] for row in rows if key in row]
        if parts:
            batch[key] = torch.cat(parts, dim=0).to(device) if device is not None else torch.cat(parts, dim=0)
    return batch


# (pixels key, grid key, clip-index kwarg of rova.models.vision_sharing) per modality
SHARED_MODALITIES = (
    ("pixel_values_videos", "video_grid_thw", "video_clip_index"),
    ("pixel_values", "image_grid_thw", "image_clip_index"),
)
_SHARED_PIXEL_KEYS = {pixel_key for pixel_key, _, _ in SHARED_MODALITIES}


def stack_shared_visual(rows: list[dict[str, torch.Tensor]], device: torch.device | str | None = None) -> dict:
    """`stack_visual`, but the pixels of each distinct clip only once, plus the clip index of every video/image.

    Rows that show the same clip hold the same pixel tensor object: the rollout encodes each (branch, prompt
    group) view once (`encode_prompt`) and all completion rows of that view reference it, through TRL's shuffle
    and split (they move list items, never copy them). A shuffled or corrupted view is another encoding, hence
    another clip. Grids (and per-video timing tensors) stay per row: M-RoPE positions are computed per row. For the
    model to accept this, `rova.models.vision_sharing.install_shared_vision_encoding()` must be installed.
    """
    batch = stack_visual([{k: v for k, v in row.items() if k not in _SHARED_PIXEL_KEYS} for row in rows], device)
    for pixel_key, grid_key, index_key in SHARED_MODALITIES:
        clips: dict[int, tuple[list[int], torch.Tensor]] = {}  # id(pixels) -> (its clip numbers, its grid)
        parts: list[torch.Tensor] = []
        index: list[int] = []
        next_clip = 0
        for row in rows:
            if pixel_key not in row:
                continue
            pixels, grid = row[pixel_key], row[grid_key]
            known = clips.get(id(pixels))
            if known is None:
                known = clips[id(pixels)] = (list(range(next_clip, next_clip + grid.shape[0])), grid)
                next_clip += grid.shape[0]
                parts.append(pixels)
            elif not torch.equal(known[1], grid):
                raise ValueError(f"two rows share one {pixel_key} tensor but have different {grid_key}")
            index += known[0]
        if parts:
            pixels = torch.cat(parts, dim=0)
            batch[pixel_key] = pixels.to(device) if device is not None else pixels
            batch[index_key] = index
    return batch


def same_visual(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    """Whether two rows' visual tensors are equal (same keys, shapes and values): a forward pass then sees the
    same inputs whichever it is given (a corrupted view that drew no corruption is its clean clip)."""
    if a is b:
        return True
    return a.keys() == b.keys() and all(a[k].shape == b[k].shape and torch.equal(a[k], b[k]) for k in a)


def model_inputs(ids: torch.Tensor, mask: torch.Tensor, rows: list[dict], *, image_token: int | None,
                 video_token: int | None, share_vision_encoding: bool, device=None) -> dict:
    """The keyword inputs of a forward or generate pass over padded `ids` whose rows show the clips of `rows`;
    with sharing, each distinct clip's pixels once plus the rows' clip indices."""
    stack = stack_shared_visual if share_vision_encoding else stack_visual
    return {
        "input_ids": ids,
        "attention_mask": mask,
        "mm_token_type_ids": mm_token_type_ids(ids, image_token, video_token),
        **stack(rows, device),
    }
