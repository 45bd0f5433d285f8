"""What a model family owns: everything that differs between Qwen2.5-VL, Qwen3-VL, ... lives behind this class.

A family adapter (one module per family in this package) says how frames become processor inputs (patch and
merge size, hence the frame-size factor used by sampling; the video metadata: fps, frame indices), which
tokens are vision placeholders, which visual tensors a row carries, which model classes to load and to wrap
for shared vision encoding, what upstream corrections to install, and how its tiny offline model is built.
Code outside `rova/models/families/` asks the adapter (`rova.models.families.get_family`) and never names a
family.

Time labels. Every view of a clip (clean, shuffled, corrupted) carries the CLEAN clip's timing: slot i is
labelled with the time of the i-th sampled frame. A shuffled clip therefore shows ordered time labels over
shuffled content (the labels say nothing about the permutation), and a frame-dropped clip shows, at a dropped
slot, the held frame at the time the dropped frame would have had (as a frozen stream does).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from rova.data.timing import ClipTiming

if TYPE_CHECKING:
    import torch

# mm_token_type_ids values (transformers' convention for every Qwen VL family)
MM_TEXT, MM_IMAGE, MM_VIDEO = 0, 1, 2


def mm_token_type_ids(input_ids: "torch.Tensor", image_token_id: int | None, video_token_id: int | None) -> "torch.Tensor":
    """Which positions are image (1) or video (2) placeholders (0: text)."""
    import torch

    types = torch.zeros_like(input_ids, dtype=torch.int32)
    if image_token_id is not None:
        types[input_ids == image_token_id] = MM_IMAGE
    if video_token_id is not None:
        types[input_ids == video_token_id] = MM_VIDEO
    return types


@dataclass
class EncodedPrompt:
    """One prompt rendered by the chat template and encoded together with its clip (or image)."""

    input_ids: list[int]
    visual: dict[str, "torch.Tensor"]
    # What produced the encoding, so another engine (vLLM) is handed exactly the same inputs.
    text: str = ""
    frames: np.ndarray | None = None
    sample_fps: float | None = None
    is_image: bool = False
    video_metadata: dict | None = None       # the metadata the processor was given (fps, frame indices, ...)
    processor_kwargs: dict | None = None     # the processor settings it was given


@dataclass(frozen=True)
class VisionTokens:
    image_pad: str = "<|image_pad|>"
    video_pad: str = "<|video_pad|>"
    vision_start: str = "<|vision_start|>"
    vision_end: str = "<|vision_end|>"

    def all(self) -> tuple[str, ...]:
        return (self.image_pad, self.video_pad, self.vision_start, self.vision_end)


# Frames arrive sampled and resized by our own rules: the processor (HF or vLLM's) must not redo either.
NO_RESAMPLING = {"do_sample_frames": False, "do_resize": False, "cap_pixels_per_frame": False}


class ModelFamily(ABC):
    """Base adapter. A family module subclasses it and registers one instance in `rova.models.families`."""

    name: ClassVar[str]
    title: ClassVar[str]                      # for humans: "Qwen2.5-VL"
    model_types: ClassVar[tuple[str, ...]]    # config.json `model_type` values this family loads
    patch_size: ClassVar[int]
    merge_size: ClassVar[int] = 2
    temporal_patch_size: ClassVar[int] = 2
    tokens: ClassVar[VisionTokens] = VisionTokens()
    # ChatML: text end, turn start, turn end (also the tiny tokenizer's special tokens, with the vision tokens)
    pad_token: ClassVar[str] = "<|endoftext|>"
    turn_start: ClassVar[str] = "<|im_start|>"
    end_of_turn: ClassVar[str] = "<|im_end|>"
    # Visual tensors a video row carries (besides the pixels), kept per row and concatenated in row order.
    video_keys: ClassVar[tuple[str, ...]] = ("pixel_values_videos", "video_grid_thw")
    image_keys: ClassVar[tuple[str, ...]] = ("pixel_values", "image_grid_thw")
    # Fields of the vision tower's output that hold one row per visual token (indexed per clip when shared).
    per_token_feature_fields: ClassVar[tuple[str, ...]] = ()
    # Keyword arguments of the text decoder that carry visual features per visual token (a mask of the visual
    # positions, then the features: Qwen3-VL's DeepStack); a sequence-parallel chunk takes its tokens' share.
    decoder_visual_kwargs: ClassVar[tuple[str, str] | None] = None
    tiny_dir_name: ClassVar[str]

    # ------------------------------------------------------------------ sizes
    @property
    def frame_factor(self) -> int:
        """Frame sides are multiples of this: one merged vision token per factor x factor pixels."""
        return self.patch_size * self.merge_size

    # ------------------------------------------------------------------ model classes and upstream fixes
    @abstractmethod
    def model_class(self, model_type: str):
        """The *ForConditionalGeneration class for a checkpoint's `model_type`."""

    @abstractmethod
    def inner_model_classes(self) -> tuple[type, ...]:
        """The classes holding `visual` and `get_video_features` (wrapped by rova.models.vision_sharing)."""

    def install_fixes(self) -> None:
        """Install this family's corrections of upstream defects (class-level, idempotent). None by default."""

    # ------------------------------------------------------------------ prompts
    @abstractmethod
    def video_metadata(self, num_frames: int, timing: ClipTiming) -> dict:
        """What the processor (and vLLM) is told about the sampled frames."""

    def video_outputs(self, out) -> dict[str, "torch.Tensor"]:
        """The per-row visual tensors of a processed video prompt."""
        return {key: out[key] for key in self.video_keys}

    def encode(self, processor, text: str, frames: np.ndarray | None, timing: "ClipTiming | float | None",
               is_image: bool = False) -> EncodedPrompt:
        """Encode `text` with `frames` (uint8 [T, H, W, 3], already sampled and resized by our rules)."""
        from transformers.video_utils import VideoMetadata

        if frames is None:
            out = processor(text=[text], return_tensors="pt")
            return EncodedPrompt(out["input_ids"][0].tolist(), {}, text)
        if is_image:
            kwargs = {"do_resize": False}
            out = processor(text=[text], images=[frames[0]], return_tensors="pt", **kwargs)
            visual = {key: out[key] for key in self.image_keys}
            return EncodedPrompt(out["input_ids"][0].tolist(), visual, text, frames, None, True, None, kwargs)
        timing = ClipTiming.of(timing)
        if timing is None:
            raise ValueError("a video prompt needs its clip timing (sampling fps)")
        metadata = self.video_metadata(int(frames.shape[0]), timing)
        kwargs = dict(NO_RESAMPLING)
        out = processor(text=[text], videos=[frames], video_metadata=[VideoMetadata(**metadata)],
                        return_tensors="pt", **kwargs)
        return EncodedPrompt(out["input_ids"][0].tolist(), self.video_outputs(out), text, frames,
                             float(timing.sample_fps), False, metadata, kwargs)

    def video_text_tokens(self, processor, timing: ClipTiming) -> int:
        """Text tokens the processor writes around a video's visual tokens beyond the template's placeholder
        block (none for most families); prompt-length limits count them."""
        return 0

    def token_ids(self, tokenizer) -> dict[str, int]:
        return {
            "image_pad": tokenizer.convert_tokens_to_ids(self.tokens.image_pad),
            "video_pad": tokenizer.convert_tokens_to_ids(self.tokens.video_pad),
        }

    def mm_token_type_ids(self, input_ids: "torch.Tensor", tokenizer) -> "torch.Tensor":
        """Which positions are image (1) or video (2) placeholders; M-RoPE positions are built from it."""
        ids = self.token_ids(tokenizer)
        return mm_token_type_ids(input_ids, ids["image_pad"], ids["video_pad"])

    def banned_token_ids(self, tokenizer, vocab_size: int | None = None) -> list[int]:
        """Ids a completion must never contain: the vision tokens (the model would look for clip features for
        them) and the embedding rows past the tokenizer (text no tokenizer can decode)."""
        ids = [tokenizer.convert_tokens_to_ids(t) for t in self.tokens.all()]
        return ids + list(range(len(tokenizer), max(int(vocab_size or 0), len(tokenizer))))

    def special_tokens(self) -> list[str]:
        """Every special token of the family's tokenizer that rova relies on, the padding token first."""
        t = self.tokens
        return [self.pad_token, self.turn_start, self.end_of_turn, t.vision_start, t.vision_end, t.image_pad, t.video_pad]

    def stop_token_ids(self, tokenizer) -> list[int]:
        eos = [tokenizer.convert_tokens_to_ids(self.end_of_turn), tokenizer.eos_token_id]
        return sorted({int(t) for t in eos if t is not None})

    # ------------------------------------------------------------------ tiny offline model
    def tiny_text_config(self, tokenizer, spec, token_ids: dict[str, int]) -> dict:
        """The language model sizes of a tiny model (M-RoPE splits head_dim/2 frequencies over t, h, w)."""
        half = spec.hidden_size // spec.num_attention_heads // 2
        return dict(
            vocab_size=len(tokenizer), hidden_size=spec.hidden_size, intermediate_size=spec.intermediate_size,
            num_hidden_layers=spec.num_hidden_layers, num_attention_heads=spec.num_attention_heads,
            num_key_value_heads=spec.num_key_value_heads, max_position_embeddings=4096,
            pad_token_id=token_ids[self.pad_token],
            rope_parameters=dict(rope_type="default", mrope_section=[half - 2 * (half // 4), half // 4, half // 4]),
        )

    def tiny_vision_config(self, spec) -> dict:
        return dict(
            depth=spec.vision_depth, hidden_size=spec.vision_hidden_size, intermediate_size=2 * spec.vision_hidden_size,
            num_heads=spec.vision_heads, out_hidden_size=spec.hidden_size, patch_size=self.patch_size,
            spatial_merge_size=self.merge_size, temporal_patch_size=self.temporal_patch_size,
        )

    def tiny_token_config(self, token_ids: dict[str, int]) -> dict:
        t = self.tokens
        return dict(image_token_id=token_ids[t.image_pad], video_token_id=token_ids[t.video_pad],
                    vision_start_token_id=token_ids[t.vision_start], vision_end_token_id=token_ids[t.vision_end])

    @abstractmethod
    def tiny_model(self, tokenizer, spec, token_ids: dict[str, int]):
        """A randomly initialised model of this family with `spec`'s sizes (rova.models.tiny builds the rest)."""

    @abstractmethod
    def tiny_processor(self, tokenizer, chat_template: str):
        """The processor of the tiny model: this family's image and video processors around `tokenizer`."""

    chat_template_name: ClassVar[str]  # TRL's chat_templates/<name>.jinja, used by the tiny processor
