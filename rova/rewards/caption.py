"""Caption recall (VideoChat-R1), the rule: how many of the ground-truth events a caption covers.

A `caption` record's solution is `<answer>` holding its events, one per line (blank lines skipped; a leading list
marker "- ", "* ", "• ", "1. ", "2) " is dropped):

    <answer>a man opens the fridge
    he takes out a bottle of milk
    he pours the milk into a glass</answer>

The caption is the completion's `<answer>` content. Tokens are the maximal runs of letters and digits of the
case-folded text (punctuation and underscores separate tokens: "Fridge's" -> "fridge", "s"). Event e is COVERED
when LCS(tokens(e), tokens(caption)) / |tokens(e)| >= threshold (`reward.caption_threshold`, default 0.5), the LCS
taken over the whole caption; recall = covered events / events, in [0, 1]. A covered/not-covered verdict per event
(rather than the mean of the per-event LCS recalls) keeps the rule's number of the same kind as the judge's
(rova.rewards.caption_judge), which it replaces on the items the judge fails on.

It is a recall: a caption is not penalised for length or for what it adds, so a caption listing every word of the
vocabulary in order scores high. The paper's judged recall has no precision term either; pair it with the format
reward (or the length reward) and read the judge's numbers where that matters.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from rova.config.reward import CAPTION_THRESHOLD as DEFAULT_THRESHOLD
from rova.rewards.lcs import lcs_length

CAPTION = "caption"  # the problem type
_TOKEN = re.compile(r"[^\W_]+")
_LIST_MARKER = re.compile(r"^\s*(?:[-*\u2022]|\(?\d{1,3}[.)])\s+")


def caption_tokens(text: str) -> list[str]:
    """The maximal runs of letters and digits of the case-folded text."""
    return _TOKEN.findall(text.casefold()) if isinstance(text, str) else []


def parse_events(answer: str) -> list[str]:
    """The events of a caption ground truth (its <answer> content): the non-blank lines, list markers dropped."""
    if not isinstance(answer, str):
        return []
    events = []
    for line in answer.splitlines():
        event = _LIST_MARKER.sub("", line, count=1).strip()
        if event:
            events.append(event)
    return events


def events_problem(answer: str) -> str | None:
    """Why an <answer> cannot serve as a caption's ground truth, or None when it can (one event per line, each
    with at least one token: an event without tokens can never be covered)."""
    events = parse_events(answer)
    if not events:
        return "it holds no event (one event per line)"
    empty = [e for e in events if not caption_tokens(e)]
    if empty:
        return f"event {empty[0]!r} has no letter or digit"
    return None


def event_recalls(caption: str, events: Sequence[str]) -> list[float]:
    """Per event: the share of its tokens that the LCS with the caption's tokens covers (0 for a token-less event)."""
    tokens = caption_tokens(caption)
    recalls = []
    for event in events:
        wanted = caption_tokens(event)
        recalls.append(lcs_length(wanted, tokens) / len(wanted) if wanted else 0.0)
    return recalls


def caption_recall(caption: str, events: Sequence[str], threshold: float = DEFAULT_THRESHOLD) -> float:
    """The share of `events` covered by `caption` (an event: LCS recall >= threshold); 0 for no events."""
    if not events:
        return 0.0
    return sum(1 for recall in event_recalls(caption, events) if recall >= threshold) / len(events)
