"""A conversation rendered as the chat-templated prompt text the model is asked to continue."""

from __future__ import annotations


def render_prompt(processor, messages: list[dict]) -> str:
    from trl.trainer.utils import remove_none_values

    # Arrow pads content blocks with None keys ({"type": "video", "text": None}); strip them first or the
    # chat template may count a text block as a video.
    return processor.apply_chat_template(remove_none_values(messages), add_generation_prompt=True, tokenize=False)
