"""Per-item scoring and aggregation of evaluation results (../shared/docs/eval.md, "Metrics per item",
"Aggregation"; the per-type scores are rova.rewards' accuracy in eval mode, docs/rewards.md).

`score_prediction` scores one completion; `aggregate` turns a list of scored items into the JSON-able
summary stored as `results["clean"]` and as every cell of `results["grid"]` (see rova.eval.report for
the whole results dict).

Aggregate schema (every key always present; an accuracy over zero items is None, never NaN, so the
dict stays strict JSON)::

    {
      "n": int,                          # items scored
      "accuracy": float | None,          # STRICT (the headline): mean score over items (Video-R1 "mean_acc");
                                         # an item without an <answer> span scores 0
      "accuracy_lenient": float | None,  # LENIENT: the same items, an output without an <answer> span scored
                                         # as a whole (how Video-R1- and TW-GRPO-style evals score untagged
                                         # answers); None when an item lacks its lenient score (older files)
      "extraction_failures": int,        # items whose completion had no <answer> span
      "extraction_failure_rate": float | None,
      "skipped_media": int,              # passthrough: items not scored because their clip failed to decode
      "by_problem_type": {type: GROUP},
      "by_benchmark": {benchmark: GROUP + {"skipped_media": int,
                                           "by_subtask": {key: {value: GROUP}},
                                           "subtask_mean": {key: float | None}}},
      "by_subtask": {key: {value: GROUP}},     # over all benchmarks, items that carry the key
      "subtask_mean": {key: float | None},     # unweighted mean of the per-value accuracies
    }
    GROUP = {"n": int, "accuracy": float | None, "accuracy_lenient": float | None, "extraction_failures": int}

Sub-task values are stringified (JSON object keys); items without the key (or with None) are left out
of that key's grouping only. "subtask_mean" is the official number of benchmarks that average over
tasks (VSI-Bench overall = mean of per-task scores); "accuracy" is the plain mean over items.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from rova.rewards import (
    MRA_THRESHOLDS,
    canonical_problem_type,
    extract_answer,
)
from rova.rewards.caption import CAPTION, DEFAULT_THRESHOLD
from rova.rewards.correctness import JUDGE, RULE, caption_scorer, score_correctness

# Which MRA convention regression items are scored with (rova.rewards.accuracy, eval mode). VSI-Bench
# defines MRA with a strict "<"; lmms-eval uses "<="; Video-R1 adds 1e-8 to the denominator. Ours is
# Video-R1's: strict "<" and |gt| + 1e-8 (so gt = 0 is scorable). Record it in every results file.
MRA_CONVENTION = (
    "video-r1: MRA = mean over theta in {0.50, 0.55, ..., 0.95} of 1[|pred - gt| / (|gt| + 1e-8) < 1 - theta]"
)

# Types whose per-item score is 0 or 1; the others (OCR, free-form, regression, grounding, tracking) are graded.
# grounded_qa's eval score (its option letter; the glue IoU is a training reward) is 0 or 1 too, so the graded
# rule (score >= 0.5) judges it the same; it stays out of this list so recorded results keep their wording.
BINARY_TYPES: tuple[str, ...] = ("multiple choice", "numerical")


@dataclass(frozen=True)
class ItemScore:
    """The score of one completion: `score` in [0, 1]; `extracted` False when the completion had no
    <answer> span (an extraction failure, scored 0 unless fallback_whole_output); `answer` the text that
    was scored (the extracted span, the whole stripped output under the fallback, else None); `lenient` the
    score with the whole output scored when there is no <answer> span (equal to `score` when there is one);
    `judge_fallback` (caption items under reward.caption_scorer=judge) True when the judge failed on a text of the
    item and the rule scored it, False when the judge scored it, None when nothing was sent to the judge."""

    score: float
    extracted: bool
    answer: str | None
    lenient: float
    judge_fallback: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def scoring_conventions(*, fallback_whole_output: bool = False, caption: dict[str, Any] | None = None) -> dict[str, Any]:
    """The scoring conventions to record under `results["config"]["scoring"]`; `caption` (caption_conventions) under
    "caption" when given."""
    conventions = {
        "mode": "eval",
        "mra": MRA_CONVENTION,
        "mra_thresholds": list(MRA_THRESHOLDS),
        "numerical": "1 if round(pred, 2) == round(gt, 2)",
        "missing_answer": "whole output scored" if fallback_whole_output else "score 0, extraction failure",
        "fallback_whole_output": bool(fallback_whole_output),
        "accuracy": "strict: " + ("whole output scored when no <answer> span (eval.fallback_whole_output)"
                                  if fallback_whole_output else "no <answer> span scores 0"),
        "accuracy_lenient": "lenient: an output without an <answer> span is scored as a whole",
    }
    if caption is not None:
        conventions["caption"] = caption
    return conventions


def caption_conventions(reward_config: Any, items: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """How caption items were scored, for results["config"]["scoring"]["caption"]: the scorer (reward.caption_scorer),
    the rule and its threshold, and under the judge its endpoint and model, the items sent to it and how many of them
    the rule scored instead (judge_fallbacks), counted over the predictions of every cell. None when no item is a
    caption and the scorer is the default rule (nothing to say; results stay as they were)."""
    scorer = caption_scorer(reward_config)
    captions = [item for item in items if canonical_problem_type(item["problem_type"]) == CAPTION]
    if not captions and scorer == RULE:
        return None
    threshold = getattr(reward_config, "caption_threshold", DEFAULT_THRESHOLD)
    out: dict[str, Any] = {
        "scorer": scorer,
        "items": len(captions),
        "events": "the non-blank lines of the solution's <answer>",
        "rule": f"recall = covered events / events; an event is covered when the LCS of its tokens with the caption's "
                f"holds >= {threshold} of its tokens",
        "threshold": threshold,
    }
    if scorer == JUDGE:
        judge = reward_config.caption_judge
        out["judge"] = {"base_url": judge.base_url, "model": judge.model}
        out["items_judged"] = sum(1 for item in captions if item.get("judge_fallback") is not None)
        out["judge_fallbacks"] = sum(1 for item in captions if item.get("judge_fallback") is True)
    return out


def caption_fields(problem_type: str, scored: ItemScore, reward_config: Any) -> dict[str, Any]:
    """The prediction line's caption fields: `caption_scorer` (reward.caption_scorer) on caption items, and under the
    judge `judge_fallback` (ItemScore.judge_fallback); {} for the other problem types."""
    if canonical_problem_type(problem_type) != CAPTION:
        return {}
    scorer = caption_scorer(reward_config)
    return {"caption_scorer": scorer, **({"judge_fallback": scored.judge_fallback} if scorer == JUDGE else {})}


def score_prediction(
    completion: Any, solution: str, problem_type: str, *, fallback_whole_output: bool = False,
    reward_config: Any = None,
) -> ItemScore:
    """Score one completion against its solution ("<answer>X</answer>") with the eval-mode accuracy.

    A malformed solution or unknown problem_type raises rova.rewards.RewardDataError (a data error); any
    completion (None, garbage, huge) scores a finite value in [0, 1]. `reward_config` (reward.*) gives the caption
    scorer and threshold (score_predictions).
    """
    return score_predictions([completion], [solution], [problem_type], fallback_whole_output=fallback_whole_output,
                             reward_config=reward_config)[0]


def score_predictions(
    completions: Sequence[Any], solutions: Sequence[str], problem_types: Sequence[str], *,
    fallback_whole_output: bool = False, reward_config: Any = None,
) -> list[ItemScore]:
    """score_prediction for a batch (a caption judge's requests go out together).

    As training scores them (rova.rewards.correctness) with reward.caption_scorer and reward.caption_threshold from
    `reward_config`; several correct letters are scored exactly whatever reward.multi_answer says (eval's rule).
    """
    kinds = [canonical_problem_type(kind) for kind in problem_types]
    texts = [completion if isinstance(completion, str) else "" for completion in completions]
    answers = [extract_answer(text) for text in texts]
    strict = score_correctness(texts, solutions, kinds, reward_config, mode="eval", multi_answer="exact")
    untagged = [i for i, answer in enumerate(answers) if answer is None]
    lenient_scored = score_correctness([texts[i] for i in untagged], [solutions[i] for i in untagged],
                                       [kinds[i] for i in untagged], reward_config, mode="eval",
                                       fallback_whole_output=True, multi_answer="exact")
    lenient = strict.scores.copy()
    lenient[untagged] = lenient_scored.scores
    fallbacks = None
    if strict.judge_fallbacks is not None:
        fallbacks = strict.judge_fallbacks.copy()
        fallbacks[untagged] = lenient_scored.judge_fallbacks  # an untagged item's strict score was not judged
    items = []
    for i, (text, answer) in enumerate(zip(texts, answers)):
        extracted = answer is not None
        if answer is None and fallback_whole_output:
            answer = text.strip()
        flag = None if fallbacks is None or not np.isfinite(fallbacks[i]) else bool(fallbacks[i])
        score = lenient[i] if fallback_whole_output else strict.scores[i]
        items.append(ItemScore(score=float(score), extracted=extracted, answer=answer, lenient=float(lenient[i]),
                               judge_fallback=flag))
    return items


# --------------------------------------------------------------------------------------------------
# Aggregation


def _mean(values: Sequence[float]) -> float | None:
    return math.fsum(values) / len(values) if values else None


def _lenient_mean(items: Sequence[Mapping[str, Any]]) -> float | None:
    """Mean lenient score; None when some item has none (predictions written before lenient scoring)."""
    if any(item.get("lenient") is None for item in items):
        return None
    return _mean([item["lenient"] for item in items])


def _group(items: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    return {
        "n": len(items),
        "accuracy": _mean([item["score"] for item in items]),
        "accuracy_lenient": _lenient_mean(items),
        "extraction_failures": sum(1 for item in items if not item["extracted"]),
    }


def _by(items: Iterable[Mapping[str, Any]], key: str) -> dict[str, list[Mapping[str, Any]]]:
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for item in items:
        value = item.get(key)
        if value is None:
            continue
        groups.setdefault(str(value), []).append(item)
    return dict(sorted(groups.items()))


def _subtasks(items: Sequence[Mapping[str, Any]], subtask_keys: Sequence[str]) -> tuple[dict, dict]:
    by_subtask: dict[str, dict[str, Any]] = {}
    subtask_mean: dict[str, float | None] = {}
    for key in subtask_keys:
        groups = _by(items, key)
        if not groups:
            continue
        by_subtask[key] = {value: _group(members) for value, members in groups.items()}
        subtask_mean[key] = _mean([g["accuracy"] for g in by_subtask[key].values()])
    return by_subtask, subtask_mean


def subtask_spellings(items: Sequence[Mapping[str, Any]]) -> dict[str, list[str]]:
    """For each subtask key with spellings ("task_type|task"), the spellings its items matched, in order."""
    found: dict[str, dict[str, None]] = {}
    for item in items:
        for key, spelling in (item.get("subtask_matched") or {}).items():
            found.setdefault(key, {})[spelling] = None
    return {key: sorted(spellings) for key, spellings in sorted(found.items())}


def _check_item(index: int, item: Mapping[str, Any]) -> None:
    for key in ("benchmark", "problem_type", "score", "extracted"):
        if key not in item:
            raise ValueError(f"item {index} has no {key!r} key: {sorted(item)}")
    for key in ("score", "lenient"):
        score = item.get(key)
        if key == "lenient" and score is None:
            continue
        if isinstance(score, bool) or not isinstance(score, (int, float)) or not 0.0 <= score <= 1.0:
            raise ValueError(f"item {index} has {key} {score!r}; expected a finite number in [0, 1]")


def aggregate(
    items: Sequence[Mapping[str, Any]],
    subtask_keys: Sequence[str] = (),
    *,
    skipped_media: int | Mapping[str, int] = 0,
) -> dict[str, Any]:
    """Summarise scored items (dicts with at least benchmark, problem_type, score, extracted).

    subtask_keys: record keys that name a sub-task (e.g. "duration", "domain", "task_type"); each one
    present in some item gets per-value accuracies and their unweighted mean, overall and per benchmark.
    skipped_media: the number of items not scored because their media failed (passed through), either
    a total or per benchmark.
    """
    items = list(items)
    for index, item in enumerate(items):
        _check_item(index, item)
    if isinstance(skipped_media, Mapping):
        skipped_by_benchmark = {str(k): int(v) for k, v in skipped_media.items()}
    else:
        skipped_by_benchmark = {}
    skipped_total = sum(skipped_by_benchmark.values()) if skipped_by_benchmark else int(skipped_media)

    overall = _group(items)
    by_subtask, subtask_mean = _subtasks(items, subtask_keys)
    by_benchmark: dict[str, Any] = {}
    for name, members in _by(items, "benchmark").items():
        bench_subtask, bench_mean = _subtasks(members, subtask_keys)
        by_benchmark[name] = {
            **_group(members),
            "skipped_media": skipped_by_benchmark.get(name, 0),
            "by_subtask": bench_subtask,
            "subtask_mean": bench_mean,
        }
        spellings = subtask_spellings(members)
        if spellings:  # only for keys with spellings ("a|b"): which one this benchmark's records carry
            by_benchmark[name]["subtask_spellings"] = spellings
    for name, count in skipped_by_benchmark.items():  # a benchmark whose every clip was skipped
        if name not in by_benchmark:
            by_benchmark[name] = {**_group([]), "skipped_media": count, "by_subtask": {}, "subtask_mean": {}}
    typed: dict[str, list[Mapping[str, Any]]] = {}
    for item in items:
        typed.setdefault(canonical_problem_type(item["problem_type"]), []).append(item)
    by_type = {name: _group(members) for name, members in sorted(typed.items())}
    return {
        "n": overall["n"],
        "accuracy": overall["accuracy"],
        "accuracy_lenient": overall["accuracy_lenient"],
        "extraction_failures": overall["extraction_failures"],
        "extraction_failure_rate": overall["extraction_failures"] / len(items) if items else None,
        "skipped_media": skipped_total,
        "by_problem_type": by_type,
        "by_benchmark": dict(sorted(by_benchmark.items())),
        "by_subtask": by_subtask,
        "subtask_mean": subtask_mean,
    }
