"""Per-row visual tensors of encoded prompts, batched for a forward pass (any model family).

Encoding a prompt with its clip is the family adapter's job (rova.models.families: `family.encode`). Visual
tensors are kept per row (a dict of tensors for one prompt) rather than as one flat batch tensor: TRL shuffles
and splits the generation batch row-wise, and per-row lists survive that; a flat `pixel_values_videos` would be
cut at the wrong patch boundaries.
"""

from __future__ import annotations

import torch

from rova.models.families.base import EncodedPrompt, mm_token_type_ids  # noqa: F401  (re-exported)


def embedding_rows(model) -> int | None:
    """Rows of the model's (text) embedding, from its config: right under ZeRO-3 too, where the weights are
    partitioned. None without an HF model (vLLM holds the weights)."""
    config = getattr(model, "config", None)
    if config is None:
        return None
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    return getattr(text, "vocab_size", None)


def render_prompt(processor, messages: list[dict]) -> str:
    from trl.trainer.utils import remove_none_values

    # Arrow pads content blocks with None keys ({"type": "video", "text": None}); strip them first or the
    # chat template may count a text block as a video.
    return processor.apply_chat_template(remove_none_values(messages), add_generation_prompt=True, tokenize=False)


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


def left_pad(sequences: list[list[int]], pad_id: int, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    length = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), length), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), length), dtype=torch.long)
    for i, seq in enumerate(sequences):
        if seq:
            ids[i, length - len(seq):] = torch.tensor(seq, dtype=torch.long)
            mask[i, length - len(seq):] = 1
    return ids.to(device), mask.to(device)


def right_pad(sequences: list[list[int]], pad_id: int, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    length = max(1, max(len(s) for s in sequences))
    ids = torch.full((len(sequences), length), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), length), dtype=torch.long)
    for i, seq in enumerate(sequences):
        if seq:
            ids[i, : len(seq)] = torch.tensor(seq, dtype=torch.long)
            mask[i, : len(seq)] = 1
    return ids.to(device), mask.to(device)
