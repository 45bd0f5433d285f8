"""Multiple-choice answers beyond one letter: several correct letters (TW-GRPO) and grounded QA's lenient letter
reading (VideoChat-R1). The single-letter rule is rova.rewards.accuracy.parse_choice."""

from __future__ import annotations

import re

MULTI_ANSWER_MODES = ("exact", "soft")  # reward.multi_answer
_MULTI_RE = re.compile(r"[A-Z](?:,[A-Z])+")
# VideoChat-R1 strips "The best answer is"-style prefixes, then takes the first option letter A-G.
_PREFIX_RE = re.compile(r"^\s*(?:the\s+)?(?:best\s+|correct\s+|final\s+)?(?:answer|option)\s*(?:is|:)?\s*[:.]?",
                        re.IGNORECASE)
_LETTER_RE = re.compile(r"(?<![A-Za-z])[A-G](?![A-Za-z])")


def _letters(text: str) -> list[str]:
    return "".join(text.split()).upper().split(",")


def is_multi_answer(answer: str) -> bool:
    """The answer lists two or more option letters separated by commas ("A,C", "A, C")."""
    return isinstance(answer, str) and _MULTI_RE.fullmatch("".join(answer.split()).upper()) is not None


def multi_answer_score(pred: str, gt: str, mode: str = "soft") -> float:
    """Several correct letters. soft (TW-GRPO): |S| / |GT| if S is a non-empty subset of GT, else 0, where S and
    GT are the comma-separated letters with spaces removed; exact: 1 iff S == GT."""
    if mode not in MULTI_ANSWER_MODES:
        raise ValueError(f"multi_answer must be one of {MULTI_ANSWER_MODES}, got {mode!r}")
    truth = set(_letters(gt))
    chosen = set(_letters(pred)) if isinstance(pred, str) and pred.strip() else set()
    if not chosen or not chosen <= truth:
        return 0.0
    if mode == "exact":
        return 1.0 if chosen == truth else 0.0
    return len(chosen) / len(truth)


def parse_grounded_choice(text: str) -> str | None:
    """Grounded QA's option letter: the first standalone A-G after a "The best answer is"-style prefix."""
    if not isinstance(text, str):
        return None
    match = _LETTER_RE.search(_PREFIX_RE.sub("", text, count=1))
    return match.group(0) if match else None
