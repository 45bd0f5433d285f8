"""The Video-R1 prompt: question + options, reasoning instruction, per-type answer instruction."""

from __future__ import annotations

import pytest

from rova.config.data import PromptTemplates
from rova.data.prompts import build_messages, build_prompt_text
from rova.data.records import PROBLEM_TYPES, VideoQARecord
from rova.errors import ConfigError


def _rec(**kw) -> VideoQARecord:
    base = dict(
        problem_id=1, problem="How many?", data_type="video", problem_type="numerical", options=[],
        solution="<answer>3</answer>", media_path="/v.mp4",
    )
    base.update(kw)
    return VideoQARecord(**base)


def test_prompt_for_multiple_choice_matches_video_r1():
    rec = _rec(problem="Which way?", problem_type="multiple choice", options=["A. left", "B. right"])
    text = build_prompt_text(rec)
    assert text.startswith("Which way?Options:\nA. left\nB. right\n\nPlease think about this question")
    assert "<think> </think>" in text and "<answer> </answer>" in text
    assert text.endswith(
        " Please provide only the single option letter (e.g., A, B, C, D, etc.) within the <answer> </answer> tags."
    )


@pytest.mark.parametrize("problem_type", PROBLEM_TYPES)
def test_every_problem_type_has_an_answer_instruction(problem_type):
    options = ["A. x", "B. y"] if problem_type in ("multiple choice", "grounded_qa") else []
    text = build_prompt_text(_rec(problem_type=problem_type, options=options))
    assert text.count("<answer> </answer>") == 2  # reasoning instruction + type instruction
    if problem_type == "grounding":
        assert "[start, end] in seconds" in text
    if problem_type == "grounded_qa":
        assert "<glue> </glue>" in text and "Options:" in text
    elif problem_type != "multiple choice":
        assert "Options:" not in text


def test_messages_format_for_video_and_image():
    messages = build_messages(_rec())
    assert messages == [
        {"role": "user", "content": [{"type": "video"}, {"type": "text", "text": build_prompt_text(_rec())}]}
    ]
    image = build_messages(_rec(data_type="image", media_path="/i.png"), include_media_path=True)
    assert image[0]["content"][0] == {"type": "image", "image": "/i.png"}


def test_templates_are_overridable():
    templates = PromptTemplates(question="Q: {Question}\nThink in <think></think>.", system="Be brief.")
    messages = build_messages(_rec(), templates)
    assert messages[0] == {"role": "system", "content": [{"type": "text", "text": "Be brief."}]}
    assert messages[1]["content"][1]["text"].startswith("Q: How many?\nThink in")
    with pytest.raises(ConfigError, match="data.prompt.question"):
        PromptTemplates(question="no placeholder")
    with pytest.raises(ConfigError, match="data.prompt.type_templates"):
        PromptTemplates(type_templates={"numerical": "x"})
