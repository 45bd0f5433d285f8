"""Strict per-task format rules (VideoChat-R1), reward.format_rule=per_task; the default rule is rova.rewards.format.

Every task: the WHOLE completion (no surrounding whitespace allowed) fullmatches
`<think>.*?</think>\\s*<answer>.*?</answer>` (DOTALL); grounded QA appends `\\s*<glue>.*?</glue>`; tracking also
needs the answer to be a valid K x 4 box list, K = the number of ground-truth boxes (frames shown).
Matching is linear (the lazy `.*?` parts absorb anything, so a match exists iff the text starts with the first
opening tag, ends with the last closing tag and holds each `</a>\\s*<b>` junction in order: the earliest junction
is always the best choice, tests/rewards/test_format_rules.py checks this against `re.fullmatch`).
"""

from __future__ import annotations

import re

from rova.rewards.answers import extract_answer
from rova.rewards.boxes import parse_boxes

FORMAT_RULES = ("video_r1", "per_task")  # reward.format_rule
TASK_TAGS = {"grounded_qa": ("think", "answer", "glue")}
DEFAULT_TAGS = ("think", "answer")
_JUNCTIONS: dict[tuple[str, str], re.Pattern] = {}


def tags_fullmatch(text: str, tags: tuple[str, ...]) -> bool:
    """Whether `text` fullmatches `<t0>.*?</t0>\\s*<t1>.*?</t1>...` (DOTALL), in linear time."""
    if not isinstance(text, str):
        return False
    first, last = f"<{tags[0]}>", f"</{tags[-1]}>"
    if not (text.startswith(first) and text.endswith(last)):
        return False
    pos, end = len(first), len(text) - len(last)
    for a, b in zip(tags, tags[1:]):
        junction = _JUNCTIONS.setdefault((a, b), re.compile(rf"</{a}>\s*<{b}>"))
        match = junction.search(text, pos, end) if pos <= end else None
        if match is None:
            return False
        pos = match.end()
    return pos <= end


def strict_format_score(completion: str, problem_type: str, solution: str) -> float:
    """1.0 if the completion follows its task's strict format (module docstring), else 0.0."""
    if not tags_fullmatch(completion, TASK_TAGS.get(problem_type, DEFAULT_TAGS)):
        return 0.0
    if problem_type == "tracking":
        boxes, truth = parse_boxes(extract_answer(completion) or ""), parse_boxes(extract_answer(solution) or "")
        return 1.0 if boxes is not None and truth and len(boxes) == len(truth) else 0.0
    return 1.0
