"""HF generation: the one `generate` call of the trainer's rollouts, stage=eval and stage=cot, and its generator.

`generate_ids` runs a left-padded batch of encoded prompts (each with its own clip) through `model.generate` and
cuts every completion after its first end-of-sequence token; the trainer calls it on its unwrapped model with its
own GenerationConfig, `HFGenerator` (eval, and cot's sampling teacher) on a loaded model with a decoding preset.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from rova.config.eval import DECODING_PRESETS
from rova.inference.eos import cut_at_eos
from rova.inference.padding import left_pad
from rova.inference.visual import model_inputs
from rova.models.families import ClipTiming, EncodedPrompt, ModelFamily, family_of_model


def embedding_rows(model) -> int | None:
    """Rows of the model's (text) embedding, from its config: right under ZeRO-3 too, where the weights are
    partitioned. None without an HF model (vLLM holds the weights)."""
    config = getattr(model, "config", None)
    if config is None:
        return None
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    return getattr(text, "vocab_size", None)


def prompt_inputs(prompts: list[EncodedPrompt], *, pad_id: int, image_token: int | None, video_token: int | None,
                  share_vision_encoding: bool, device) -> dict:
    """generate()'s inputs for a non-empty batch of prompts: left-padded ids, their clips stacked (shared or not)."""
    ids, mask = left_pad([p.input_ids for p in prompts], pad_id, device)
    return model_inputs(ids, mask, [p.visual for p in prompts], image_token=image_token, video_token=video_token,
                        share_vision_encoding=share_vision_encoding, device=device)


def generate_ids(model, inputs: dict, generation_config, eos_ids) -> list[list[int]]:
    """One completion per row of `inputs` (prompt_inputs): its token ids up to and including the first of `eos_ids`."""
    from rova.models.vision_sharing import generate_sharing_clips

    out = generate_sharing_clips(model, inputs, generation_config=generation_config)
    eos = set(eos_ids)
    return [cut_at_eos(row, eos) for row in out[:, inputs["input_ids"].size(1):].cpu().tolist()]


@dataclass
class HFGenerator:
    """A model and its processor, generating one completion per prompt (greedy by default)."""

    model: object
    processor: object
    decoding: str = "greedy"            # a name of rova.config.eval.DECODING_PRESETS
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

    def decode(self, completions: list[list[int]]) -> list[str]:
        return self.processor.batch_decode(completions, skip_special_tokens=True)

    def inputs(self, prompts: list[EncodedPrompt]) -> dict:
        """generate()'s inputs for a non-empty batch of prompts (on the model's device)."""
        device = next(self.model.parameters()).device
        return prompt_inputs(prompts, pad_id=self.pad_id, image_token=self.image_token, video_token=self.video_token,
                             share_vision_encoding=self.share_vision_encoding, device=device)

    @torch.no_grad()
    def generate_from(self, inputs: dict) -> list[str]:
        return self.decode(generate_ids(self.model, inputs, self.generation_config, self.eos_ids))

    @torch.no_grad()
    def generate(self, prompts: list[EncodedPrompt]) -> list[str]:
        if not prompts:
            return []
        return self.generate_from(self.inputs(prompts))
