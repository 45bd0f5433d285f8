"""Batched HF generation for evaluation: left-padded prompts with their own clips, decoding from config."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from rova.config.eval import DECODING_PRESETS
from rova.models.families import ClipTiming, ModelFamily, family_of_model
from rova.training.visual_inputs import (
    EncodedPrompt,
    embedding_rows,
    left_pad,
    mm_token_type_ids,
    stack_shared_visual,
    stack_visual,
)


@dataclass
class Generator:
    """A model and its processor, generating one completion per prompt (greedy by default)."""

    model: object
    processor: object
    decoding: str = "greedy"
    max_new_tokens: int = 256
    share_vision_encoding: bool = True  # prompts holding the same clip object share one vision-tower run
    family: ModelFamily | None = None   # None: the model's own (rova.models.families); required without a model

    def __post_init__(self) -> None:
        from transformers import GenerationConfig

        if self.family is None:
            self.family = family_of_model(self.model)
        if self.share_vision_encoding:
            from rova.models.vision_sharing import install_shared_vision_encoding

            install_shared_vision_encoding(self.family)

        tokenizer = self.processor.tokenizer
        self.pad_id = tokenizer.pad_token_id
        token_ids = self.family.token_ids(tokenizer)
        self.image_token, self.video_token = token_ids["image_pad"], token_ids["video_pad"]
        self.eos_ids = self.family.stop_token_ids(tokenizer)
        self.generation_config = GenerationConfig(
            max_new_tokens=self.max_new_tokens,
            eos_token_id=self.eos_ids,
            pad_token_id=self.pad_id,
            # Vision placeholders and the embedding's padding rows are never sampled.
            suppress_tokens=self.family.banned_token_ids(tokenizer, embedding_rows(self.model)),
            **DECODING_PRESETS[self.decoding],
        )

    def encode(self, text: str, frames: np.ndarray, timing: ClipTiming | float | None, is_image: bool) -> EncodedPrompt:
        return self.family.encode(self.processor, text, frames, timing, is_image)

    @torch.no_grad()
    def generate(self, prompts: list[EncodedPrompt]) -> list[str]:
        if not prompts:
            return []
        device = next(self.model.parameters()).device
        from rova.models.vision_sharing import generate_sharing_clips

        ids, mask = left_pad([p.input_ids for p in prompts], self.pad_id, device)
        stack = stack_shared_visual if self.share_vision_encoding else stack_visual
        inputs = {"input_ids": ids, "attention_mask": mask,
                  "mm_token_type_ids": mm_token_type_ids(ids, self.image_token, self.video_token),
                  **stack([p.visual for p in prompts], device)}
        out = generate_sharing_clips(self.model, inputs, generation_config=self.generation_config)
        completions = []
        for row in out[:, ids.size(1):].cpu().tolist():
            cut = next((i for i, tok in enumerate(row) if tok in self.eos_ids), None)
            completions.append(row[: cut + 1] if cut is not None else row)
        return self.processor.batch_decode(completions, skip_special_tokens=True)
