"""Family adapters as the tests use them: the tiny Qwen2.5-VL's encoder under its old helper's name."""

from __future__ import annotations

from rova.models.families import get_family

QWEN2_5_VL = get_family("qwen2_5_vl")
QWEN3_VL = get_family("qwen3_vl")
VISION_TOKENS = QWEN2_5_VL.tokens.all()


def encode_prompt(processor, text, frames, timing=None, is_image=False):
    """Encode a prompt for the tiny Qwen2.5-VL (`timing`: a ClipTiming or the sampling fps)."""
    return QWEN2_5_VL.encode(processor, text, frames, timing, is_image)


def banned_token_ids(tokenizer, vocab_size=None):
    return QWEN2_5_VL.banned_token_ids(tokenizer, vocab_size)
