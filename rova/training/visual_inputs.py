"""Turn decoded clips into what Qwen2.5-VL consumes, one prompt at a time.

Visual tensors are kept per row (a dict of tensors for one prompt) rather than as one flat batch tensor:
TRL shuffles and splits the generation batch row-wise, and per-row lists survive that; a flat
`pixel_values_videos` would be cut at the wrong patch boundaries.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

VISUAL_KEYS = ("pixel_values_videos", "video_grid_thw", "second_per_grid_ts", "pixel_values", "image_grid_thw")
MM_IMAGE, MM_VIDEO = 1, 2
VISION_TOKENS = ("<|image_pad|>", "<|video_pad|>", "<|vision_start|>", "<|vision_end|>")


def embedding_rows(model) -> int | None:
    """Rows of the model's (text) embedding, from its config: right under ZeRO-3 too, where the weights are
    partitioned. None without an HF model (vLLM holds the weights)."""
    config = getattr(model, "config", None)
    if config is None:
        return None
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    return getattr(text, "vocab_size", None)


def banned_token_ids(tokenizer, vocab_size: int | None = None) -> list[int]:
    """Ids a completion must never contain: vision placeholders (the model would look for clip features for
    them) and the embedding rows past the tokenizer (Qwen2.5-VL pads 151,665 tokens to 151,936 rows: text no
    tokenizer can decode)."""
    ids = [tokenizer.convert_tokens_to_ids(t) for t in VISION_TOKENS]
    return ids + list(range(len(tokenizer), max(int(vocab_size or 0), len(tokenizer))))


@dataclass
class EncodedPrompt:
    """One prompt rendered by the chat template and encoded together with its clip (or image)."""

    input_ids: list[int]
    visual: dict[str, torch.Tensor]
    # What produced the encoding, so another engine (vLLM) can be handed exactly the same inputs.
    text: str = ""
    frames: np.ndarray | None = None
    sample_fps: float | None = None
    is_image: bool = False


def render_prompt(processor, messages: list[dict]) -> str:
    from trl.trainer.utils import remove_none_values

    # Arrow pads content blocks with None keys ({"type": "video", "text": None}); strip them first or the
    # chat template may count a text block as a video.
    return processor.apply_chat_template(remove_none_values(messages), add_generation_prompt=True, tokenize=False)


def encode_prompt(processor, text: str, frames: np.ndarray | None, sample_fps: float | None, is_image: bool = False) -> EncodedPrompt:
    """Encode `text` with `frames` (uint8 [T, H, W, 3], already sampled and resized by our sampling rules).

    The processor must not re-sample or re-size: `do_sample_frames=False`, `do_resize=False`. The true sampling
    fps goes in through the video metadata so that `second_per_grid_ts` (M-RoPE time positions) is right.
    """
    from transformers.video_utils import VideoMetadata

    if frames is None:
        out = processor(text=[text], return_tensors="pt")
        return EncodedPrompt(out["input_ids"][0].tolist(), {}, text)
    if is_image:
        out = processor(text=[text], images=[frames[0]], return_tensors="pt", do_resize=False)
        visual = {"pixel_values": out["pixel_values"], "image_grid_thw": out["image_grid_thw"]}
        return EncodedPrompt(out["input_ids"][0].tolist(), visual, text, frames, None, True)
    num_frames = int(frames.shape[0])
    out = processor(
        text=[text],
        videos=[frames],
        video_metadata=[VideoMetadata(**video_metadata(num_frames, sample_fps))],
        return_tensors="pt",
        **VIDEO_PROCESSOR_KWARGS,
    )
    visual = {
        "pixel_values_videos": out["pixel_values_videos"],
        "video_grid_thw": out["video_grid_thw"],
        "second_per_grid_ts": torch.as_tensor(out["second_per_grid_ts"], dtype=torch.float32).reshape(-1),
    }
    return EncodedPrompt(out["input_ids"][0].tolist(), visual, text, frames, float(sample_fps), False)


# Frames arrive sampled and resized by our own rules: the processor (HF or vLLM's) must not redo either.
VIDEO_PROCESSOR_KWARGS = {"do_sample_frames": False, "do_resize": False, "cap_pixels_per_frame": False}


def video_metadata(num_frames: int, sample_fps: float) -> dict:
    """Metadata whose `sampled_fps` is the true sampling fps (it sets M-RoPE time positions)."""
    return {"total_num_frames": int(num_frames), "fps": float(sample_fps), "frames_indices": list(range(num_frames))}


def stack_visual(rows: list[dict[str, torch.Tensor]], device: torch.device | str | None = None) -> dict[str, torch.Tensor]:
    """Concatenate per-row visual tensors in row order (the order the model meets the pad tokens)."""
    batch: dict[str, torch.Tensor] = {}
    for key in VISUAL_KEYS:
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
    another clip. Grids and `second_per_grid_ts` stay per row (M-RoPE positions are computed per row). For the
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


def mm_token_type_ids(input_ids: torch.Tensor, image_token_id: int | None, video_token_id: int | None) -> torch.Tensor:
    """Which positions are image (1) or video (2) placeholders; Qwen2.5-VL builds M-RoPE positions from it."""
    types = torch.zeros_like(input_ids, dtype=torch.int32)
    if image_token_id is not None:
        types[input_ids == image_token_id] = MM_IMAGE
    if video_token_id is not None:
        types[input_ids == video_token_id] = MM_VIDEO
    return types


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
