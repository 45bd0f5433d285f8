"""The correctness of completions as `reward.*` says: accuracy_score per problem type, and caption recall by the
configured scorer (reward.caption_scorer: the rule, or the LLM judge with the rule for what it fails on).

Training (rova.training.scoring, the memory re-check), the reward registry's own scoring (stage=select, TRL-style
calls) and eval (rova.eval.scoring) all score through `score_correctness`, so a record is scored alike everywhere.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rova.config.reward import CAPTION_SCORERS
from rova.rewards.accuracy import accuracy_score, canonical_problem_type
from rova.rewards.answers import completion_to_text, extract_answer
from rova.rewards.caption import CAPTION, DEFAULT_THRESHOLD, caption_tokens, parse_events

log = logging.getLogger(__name__)
RULE, JUDGE = CAPTION_SCORERS  # reward.caption_scorer
_LOGGED_FAILURES = 10  # the first judge failures of a process are logged one by one, then every 100th
_failures_seen = 0


@dataclass
class Correctness:
    """`scores[i]` in [0, 1] per completion; `judge_fallbacks[i]`: 1.0 where the judge failed and the rule scored the
    caption, 0.0 where the judge scored it, NaN where it was not asked (another problem type, no caption text);
    None when the scorer is the rule (nothing is judged)."""

    scores: np.ndarray
    judge_fallbacks: np.ndarray | None = None

    @property
    def num_fallbacks(self) -> int:
        return 0 if self.judge_fallbacks is None else int(np.nansum(self.judge_fallbacks))


def caption_scorer(reward_config: Any) -> str:
    """reward.caption_scorer: "rule" (also without a reward config) or "judge"."""
    return getattr(reward_config, "caption_scorer", RULE)


def scored_text(completion: Any, fallback_whole_output: bool = False) -> str | None:
    """The text accuracy_score scores: the last <answer> span, or the stripped whole output under the fallback."""
    text = completion_to_text(completion)
    answer = extract_answer(text)
    if answer is None and fallback_whole_output:
        answer = text.strip()
    return answer


def score_correctness(
    completions: Sequence[Any],
    solutions: Sequence[str],
    problem_types: Sequence[str],
    reward_config: Any = None,
    *,
    mode: str = "train",
    fallback_whole_output: bool = False,
    multi_answer: str | None = None,
) -> Correctness:
    """The correctness of every completion against its solution, with reward.multi_answer, reward.caption_threshold
    and reward.caption_scorer from `reward_config` (a RewardConfig; None = the defaults). `multi_answer` overrides
    the config's (eval scores several correct letters exactly whatever the training reward was).

    Under the judge, every caption row with caption text is sent to the judge (one request each, concurrently); a
    row the judge fails on keeps its rule score and is flagged in `judge_fallbacks` (and logged). A caption with no
    letter or digit covers nothing: 0, not judged. A malformed ground truth raises RewardDataError before any request.
    """
    threshold = getattr(reward_config, "caption_threshold", DEFAULT_THRESHOLD)
    if multi_answer is None:
        multi_answer = getattr(reward_config, "multi_answer", "exact")
    texts = [completion_to_text(c) for c in completions]
    # As TRL may pass them: one value for every completion, or one per completion.
    solutions = [solutions] * len(texts) if isinstance(solutions, str) else list(solutions)
    problem_types = [problem_types] * len(texts) if isinstance(problem_types, str) else list(problem_types)
    scores = np.array([
        accuracy_score(text, solution, kind, mode=mode, fallback_whole_output=fallback_whole_output,
                       multi_answer=multi_answer, caption_threshold=threshold)
        for text, solution, kind in zip(texts, solutions, problem_types, strict=True)
    ], dtype=np.float64)
    if caption_scorer(reward_config) != JUDGE:
        return Correctness(scores)
    fallbacks = np.full(len(texts), np.nan)
    asked: list[int] = []
    items: list[tuple[str, list[str]]] = []
    for i, (text, solution, kind) in enumerate(zip(texts, solutions, problem_types)):
        if canonical_problem_type(kind) != CAPTION:
            continue
        caption = scored_text(text, fallback_whole_output)
        if caption is None or not caption_tokens(caption):
            continue
        asked.append(i)
        items.append((caption, parse_events(extract_answer(solution))))
    if items:
        from rova.rewards.caption_judge import CaptionJudge

        verdicts = CaptionJudge(reward_config.caption_judge).judge_many(items)
        for i, verdict in zip(asked, verdicts):
            if verdict.recall is None:
                fallbacks[i] = 1.0
                _log_failure(verdict.failure)
            else:
                fallbacks[i] = 0.0
                scores[i] = verdict.recall
    return Correctness(scores, fallbacks)


def _log_failure(reason: str | None) -> None:
    global _failures_seen
    _failures_seen += 1
    if _failures_seen <= _LOGGED_FAILURES or _failures_seen % 100 == 0:
        log.warning("caption judge failed (%s); the caption is scored by the rule instead (fallback #%d of this "
                    "process)", reason, _failures_seen)
