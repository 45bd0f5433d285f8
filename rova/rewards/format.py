"""Format reward: 1 if the completion is exactly `<think>...</think> <answer>...</answer>`, else 0."""

from __future__ import annotations

import re
from typing import Any

from rova.rewards.answers import completion_to_text

# The spec's pattern, kept as the reference the tests compare against. Matching it directly with `re`
# backtracks quadratically on long outputs with many tags, so `format_score` checks the same language
# by linear scanning instead.
FORMAT_PATTERN = r"^\s*<think>.*?</think>\s*<answer>.*?</answer>\s*$"

_THINK_OPEN = "<think>"
_ANSWER_CLOSE = "</answer>"
# Unanchored search for the junction; each attempt only scans the whitespace run after one
# "</think>", and those runs are disjoint, so the search is linear.
_JUNCTION_RE = re.compile(r"</think>\s*<answer>")


def format_score(completion: str) -> float:
    """1.0 if `completion` fully matches FORMAT_PATTERN (DOTALL), else 0.0; linear time.

    The pattern's lazy `.*?` parts can absorb anything, so a full match exists exactly when the text,
    stripped of surrounding whitespace, starts with "<think>", ends with "</answer>", and somewhere
    in between contains "</think>", optional whitespace, "<answer>".
    """
    if not isinstance(completion, str):
        return 0.0
    text = completion.strip()
    if not (text.startswith(_THINK_OPEN) and text.endswith(_ANSWER_CLOSE)):
        return 0.0
    inner_start = len(_THINK_OPEN)
    inner_end = len(text) - len(_ANSWER_CLOSE)
    if inner_end < inner_start:
        return 0.0
    return 1.0 if _JUNCTION_RE.search(text, inner_start, inner_end) else 0.0


def format_reward(prompts: Any, completions: list[Any], **kwargs: Any) -> list[float]:
    """TRL reward callable: `format_score` of each completion (string or conversational)."""
    return [format_score(completion_to_text(completion)) for completion in completions]
