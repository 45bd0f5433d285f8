"""The Video-R1 prompt: question (+ options), reasoning instruction, per-type answer instruction.

The default wording is Video-R1's (QUESTION_TEMPLATE / TYPE_TEMPLATE), kept verbatim so that
checkpoints trained with it see the prompt they know; `grounding` is our addition. Change the
wording through `PromptTemplates` (a config value), not by editing this file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Optional

from rova.errors import ConfigError

if TYPE_CHECKING:
    from rova.data.records import VideoQARecord

VIDEO_R1_QUESTION_TEMPLATE = (
    "{Question}\n"
    "Please think about this question as if you were a human pondering deeply. "
    "Engage in an internal dialogue using expressions such as 'let me think', 'wait', 'Hmm', 'oh, I see', "
    "'let's break it down', etc, or other natural language thought expressions "
    "It's encouraged to include self-reflection or verification in the reasoning process. "
    "Provide your detailed reasoning between the <think> </think> tags, and then give your final answer "
    "between the <answer> </answer> tags."
)

_NUMERIC = " Please provide the numerical value (e.g., 42 or 3.14) within the <answer> </answer> tags."
VIDEO_R1_TYPE_TEMPLATES = {
    "multiple choice": (
        " Please provide only the single option letter (e.g., A, B, C, D, etc.) within the <answer> </answer> tags."
    ),
    "numerical": _NUMERIC,
    "OCR": (
        " Please transcribe text from the image/video clearly and provide your text answer within the "
        "<answer> </answer> tags."
    ),
    "free-form": " Please provide your text answer within the <answer> </answer> tags.",
    "regression": _NUMERIC,
    "grounding": (
        " Please provide the time span as [start, end] in seconds (e.g., [1.0, 2.5]) within the "
        "<answer> </answer> tags."
    ),
}


@dataclass
class PromptTemplates:
    """Prompt wording (OmegaConf-compatible). `question` must contain the `{Question}` placeholder.

    For multiple choice the question is problem + options_header + one option per line, exactly as
    Video-R1 builds it (its header has no separator before "Options:").
    """

    question: str = VIDEO_R1_QUESTION_TEMPLATE
    type_templates: dict[str, str] = field(default_factory=lambda: dict(VIDEO_R1_TYPE_TEMPLATES))
    options_header: str = "Options:\n"
    system: Optional[str] = None

    def __post_init__(self) -> None:
        if "{Question}" not in self.question:
            raise ConfigError("data.prompt.question", "must contain the {Question} placeholder")
        missing = [t for t in VIDEO_R1_TYPE_TEMPLATES if t not in self.type_templates]
        if missing:
            raise ConfigError("data.prompt.type_templates", f"missing templates for problem types {missing}")


DEFAULT_TEMPLATES = PromptTemplates()


def question_with_options(record: VideoQARecord, templates: PromptTemplates = DEFAULT_TEMPLATES) -> str:
    """The question text; for multiple choice the options follow, one per line."""
    if record.problem_type != "multiple choice":
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
