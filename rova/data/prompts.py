"""The Video-R1 prompt: question (+ options), reasoning instruction, per-type answer instruction.

The default wording is Video-R1's (QUESTION_TEMPLATE / TYPE_TEMPLATE), kept verbatim in
rova/config/data.py (`PromptTemplates`, the `data.prompt.*` settings) so that checkpoints trained with it
see the prompt they know; `grounding` is our addition. Change the wording through config, not code.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from rova.config.data import MULTI_ANSWER_TEMPLATE_KEY, PromptTemplates
from rova.data.records import CHOICE_TYPES
from rova.errors import ConfigError

if TYPE_CHECKING:
    from rova.data.records import VideoQARecord

DEFAULT_TEMPLATES = PromptTemplates()


def with_multi_answer_wording(templates: PromptTemplates) -> PromptTemplates:
    """The templates with multiple choice asked in the `multiple answers` wording (several letters allowed): for a
    run whose multiple-choice answers may hold several letters (data.invert_questions), every such question alike."""
    type_templates = dict(templates.type_templates)
    type_templates["multiple choice"] = type_templates[MULTI_ANSWER_TEMPLATE_KEY]
    return dataclasses.replace(templates, type_templates=type_templates)


def question_with_options(record: VideoQARecord, templates: PromptTemplates = DEFAULT_TEMPLATES) -> str:
    """The question text; for multiple choice (and grounded QA) the options follow, one per line."""
    if record.problem_type not in CHOICE_TYPES:
        return record.problem
    return record.problem + templates.options_header + "".join(f"{option}\n" for option in record.options)


def build_prompt_text(record: VideoQARecord, templates: PromptTemplates = DEFAULT_TEMPLATES) -> str:
    """The full user text: question (+ options), reasoning instruction, answer-format instruction."""
    question = templates.question.replace("{Question}", question_with_options(record, templates))
    try:
        return question + templates.type_templates[record.problem_type]
    except KeyError:
        raise ConfigError(
            "data.prompt.type_templates", f"no template for problem type {record.problem_type!r}"
        ) from None


def build_messages(
    record: VideoQARecord, templates: PromptTemplates = DEFAULT_TEMPLATES, include_media_path: bool = False
) -> list[dict[str, Any]]:
    """Chat messages for the Qwen2.5-VL template: one user turn, a media block then the text block.

    The media block is bare ({"type": "video"} / {"type": "image"}): the decoded frames travel
    separately to the processor. `include_media_path` adds the path under the type key, for tools
    that load media from the message themselves.
    """
    media: dict[str, Any] = {"type": record.data_type}
    if include_media_path:
        media[record.data_type] = record.media_path
    messages: list[dict[str, Any]] = []
    if templates.system is not None:
        messages.append({"role": "system", "content": [{"type": "text", "text": templates.system}]})
    messages.append(
        {"role": "user", "content": [media, {"type": "text", "text": build_prompt_text(record, templates)}]}
    )
    return messages
