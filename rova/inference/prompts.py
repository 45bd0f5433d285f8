"""A conversation rendered as the chat-templated prompt text the model is asked to continue."""

from __future__ import annotations

from collections.abc import Mapping


def remove_none_values(example):
    """`example` (nested lists and mappings) without the mapping entries whose value is None: TRL's
    `trl.trainer.utils.remove_none_values`, kept here so that rendering a prompt does not import TRL (seconds
    of imports for stage=eval and stage=cot, which never train)."""
    if isinstance(example, list):
        return [remove_none_values(value) if isinstance(value, (dict, list)) else value for value in example]
    if isinstance(example, Mapping):
        return {key: remove_none_values(value) if isinstance(value, (dict, list)) else value
                for key, value in example.items() if value is not None}
    raise TypeError("Input must be a list or a dictionary.")


def render_prompt(processor, messages: list[dict]) -> str:
    # Arrow pads content blocks with None keys ({"type": "video", "text": None}); strip them first or the
    # chat template may count a text block as a video.
    return processor.apply_chat_template(remove_none_values(messages), add_generation_prompt=True, tokenize=False)
