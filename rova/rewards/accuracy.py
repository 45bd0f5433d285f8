"""Accuracy reward per problem type (docs/rewards.md, "Accuracy reward, per problem_type").

Model output never raises: any completion string scores a finite value in [0, 1]. A malformed
ground truth or an unknown problem_type is a data error and raises `RewardDataError` (a ValueError),
because silently scoring 0 would hide a broken dataset behind a flat reward curve.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import numpy as np

from rova.errors import DataError
from rova.rewards.answers import completion_to_text, extract_answer
from rova.rewards.boxes import parse_boxes, tracking_iou
from rova.rewards.caption import CAPTION, DEFAULT_THRESHOLD, caption_recall, events_problem, parse_events
from rova.rewards.choices import MULTI_ANSWER_MODES, is_multi_answer, multi_answer_score, parse_grounded_choice
from rova.rewards.glue import ground_truth_glue
from rova.rewards.iou import parse_segments, segments_iou
from rova.rewards.lcs import lcs_length

PROBLEM_TYPES = (
    "multiple choice", "numerical", "OCR", "free-form", "regression", "grounding", "grounded_qa", "tracking", CAPTION,
)
MODES = ("train", "eval")
# MRA confidence thresholds theta in {0.50, 0.55, ..., 0.95}, the VSI-Bench grid.
MRA_THRESHOLDS = tuple(float(theta) for theta in np.linspace(0.5, 0.95, 10))


class RewardDataError(DataError, ValueError):
    """The ground truth or problem_type of a record cannot be scored (a data error, not model output)."""


# --------------------------------------------------------------------------------------------------
# Parsing helpers (all total on model output)

# "B", "B.", "B)", "B:", "(B)", "(B) text", "[B]", "B. text", "b) text". A bare letter followed by text
# without a delimiter ("A dog runs") is NOT an option letter.
_CHOICE_RE = re.compile(r"(?:\(([A-Z])\)|\[([A-Z])\]|([A-Z])(?:[.):]|$))")
_NUMBER_RE = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_THOUSANDS_RE = re.compile(r"[+-]?[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?")


def parse_choice(text: str) -> str | None:
    """The option letter of a multiple-choice answer, upper-cased; None when there is none."""
    match = _CHOICE_RE.match(text.strip().upper())
    if match is None:
        return None
    return next(group for group in match.groups() if group is not None)


def parse_number(text: str) -> float | None:
    """A finite float from "12", "-3.5", "1e3", "1,000,000" (thousands separators only); else None.

    Rejects "nan", "inf", "1e309" (overflow), "1_000", "1,5", units and words: Python's float() is
    too permissive for model output.
    """
    text = text.strip()
    if _NUMBER_RE.fullmatch(text) is None:
        if _THOUSANDS_RE.fullmatch(text) is None:
            return None
        text = text.replace(",", "")
    value = float(text)
    return value if math.isfinite(value) else None


# --------------------------------------------------------------------------------------------------
# Per-type scores: (pred, gt) -> float in [0, 1]; gt has already been validated. (Caption recall, with its
# threshold, and several correct letters, with their mode, are scored by accuracy_score itself.)


def _score_multiple_choice(pred: str, gt: str, mode: str) -> float:
    return 1.0 if parse_choice(pred) == parse_choice(gt) else 0.0


def _score_numerical(pred: str, gt: str, mode: str) -> float:
    value = parse_number(pred)
    if value is None:
        return 0.0
    return 1.0 if round(value, 2) == round(parse_number(gt), 2) else 0.0


def _score_regression(pred: str, gt: str, mode: str) -> float:
    value = parse_number(pred)
    if value is None:
        return 0.0
    target = parse_number(gt)
    if mode == "eval":
        relative = abs(value - target) / (abs(target) + 1e-8)
        hits = sum(1 for theta in MRA_THRESHOLDS if relative < 1.0 - theta)
        return hits / len(MRA_THRESHOLDS)
    relative = abs(value - target) / (abs(target) + 1e-9)
    score = 1.0 - min(1.0, relative)
    return score if math.isfinite(score) else 0.0


def _words(text: str) -> str:
    # jiwer splits words on " " only; normalise every whitespace run (newlines, tabs) to one space.
    return " ".join(text.split())


def _score_ocr(pred: str, gt: str, mode: str) -> float:
    import jiwer

    reference = _words(gt)
    hypothesis = _words(pred)
    if not hypothesis:
        return 0.0
    error_rate = jiwer.wer(reference, hypothesis)
    score = 1.0 - float(error_rate)
    return min(1.0, max(0.0, score)) if math.isfinite(score) else 0.0


def _score_free_form(pred: str, gt: str, mode: str) -> float:
    reference = _rouge_tokens(gt)
    prediction = _rouge_tokens(pred)
    score = (
        _ngram_f(reference, prediction, 1) + _ngram_f(reference, prediction, 2) + _lcs_f(reference, prediction)
    ) / 3.0
    return min(1.0, max(0.0, score))


def _score_grounding(pred: str, gt: str, mode: str) -> float:
    segments = parse_segments(pred)
    if segments is None:
        return 0.0
    return segments_iou(segments, parse_segments(gt))


def _score_grounded_qa(pred: str, gt: str, mode: str) -> float:
    """The multiple-choice half of grounded QA (its glue IoU is the `iou` reward: rova.rewards.glue)."""
    letter = parse_grounded_choice(pred)
    return 1.0 if letter is not None and letter == parse_grounded_choice(gt) else 0.0


def _score_tracking(pred: str, gt: str, mode: str) -> float:
    return tracking_iou(parse_boxes(pred), parse_boxes(gt))


_SCORERS: dict[str, Callable[[str, str, str], float]] = {
    "multiple choice": _score_multiple_choice,
    "numerical": _score_numerical,
    "OCR": _score_ocr,
    "free-form": _score_free_form,
    "regression": _score_regression,
    "grounding": _score_grounding,
    "grounded_qa": _score_grounded_qa,
    "tracking": _score_tracking,
}
_CANONICAL = {name.casefold(): name for name in PROBLEM_TYPES}


# --------------------------------------------------------------------------------------------------
# ROUGE-1/2/L F-measures, identical to rouge_score.RougeScorer(["rouge1", "rouge2", "rougeL"],
# use_stemmer=True) (tests compare against it) but usable on a 1 MB completion: rouge_score stems every
# token again (~30 us each) and builds a full O(n*m) Python LCS table. Tokenisation is rouge_score's
# own; stems are memoised and the LCS length uses the bit-parallel algorithm (Hyyro 2004).


@lru_cache(maxsize=1)
def _stemmer() -> Any:
    from nltk.stem import porter

    stemmer = porter.PorterStemmer()
    stemmer.stem = lru_cache(maxsize=200_000)(stemmer.stem)
    return stemmer


def _rouge_tokens(text: str) -> list[str]:
    from rouge_score import tokenize

    return tokenize.tokenize(text, _stemmer())


def _fmeasure(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0


def _ngram_f(reference: list[str], prediction: list[str], n: int) -> float:
    ref = Counter(tuple(reference[i : i + n]) for i in range(len(reference) - n + 1))
    pred = Counter(tuple(prediction[i : i + n]) for i in range(len(prediction) - n + 1))
    overlap = sum(min(count, pred[gram]) for gram, count in ref.items())
    precision = overlap / max(sum(pred.values()), 1)
    recall = overlap / max(sum(ref.values()), 1)
    return _fmeasure(precision, recall)


def _lcs_f(reference: list[str], prediction: list[str]) -> float:
    if not reference or not prediction:
        return 0.0
    lcs = lcs_length(reference, prediction)
    return _fmeasure(lcs / len(prediction), lcs / len(reference))


# --------------------------------------------------------------------------------------------------
# Public API


def canonical_problem_type(problem_type: Any) -> str:
    """The canonical spelling of a problem type (case-insensitive); RewardDataError when unknown."""
    if isinstance(problem_type, str):
        name = _CANONICAL.get(problem_type.strip().casefold())
        if name is not None:
            return name
    raise RewardDataError(
        f"unknown problem_type {problem_type!r}; expected one of {', '.join(repr(p) for p in PROBLEM_TYPES)}"
    )


def option_letters(options: Any) -> list[str] | None:
    """The letters of a question's options ("A. dog" -> "A"), in order; None when some option carries none."""
    if not isinstance(options, (list, tuple)) or not options:
        return None
    letters = [parse_choice(o) if isinstance(o, str) else None for o in options]
    return None if None in letters else letters


def ground_truth(solution: str, problem_type: str, options: Any = None) -> str:
    """The extracted, validated ground truth of a record; RewardDataError when it cannot be scored.

    Data loaders call this once per record (rova.inference.record_checks) so a bad row is found at load time,
    not mid-training. With the record's `options`, a multiple-choice or grounded-QA answer must also be one of
    their letters (when every option carries one): a letter no completion can be shown is no answer key.
    """
    problem_type = canonical_problem_type(problem_type)
    gt = extract_answer(solution) if isinstance(solution, str) else None
    if gt is None:
        raise RewardDataError(
            f"{problem_type} solution {_preview(solution)} has no <answer>...</answer> span; "
            "store solutions as '<answer>X</answer>'"
        )
    if not gt:
        raise RewardDataError(f"{problem_type} solution {_preview(solution)} has an empty answer")
    invalid = {
        "multiple choice": lambda: parse_choice(gt) is None and not is_multi_answer(gt),
        "numerical": lambda: parse_number(gt) is None,
        "regression": lambda: parse_number(gt) is None,
        "grounding": lambda: parse_segments(gt) is None,
        "grounded_qa": lambda: parse_grounded_choice(gt) is None or ground_truth_glue(solution) is None,
        "tracking": lambda: not parse_boxes(gt),
        CAPTION: lambda: events_problem(gt) is not None,
    }.get(problem_type, lambda: False)()
    if invalid:
        raise RewardDataError(
            f"{problem_type} solution {_preview(solution)} cannot be parsed (expected an option letter or letters "
            "'A,C', a finite number, [start, end] seconds, a letter A-G plus <glue>[(s, e), ...]</glue>, boxes "
            "[[x0, y0, x1, y1], ...] in [0, 1], or caption events, one per line"
            + (f": {events_problem(gt)})" if problem_type == CAPTION else ")")
        )
    letters = option_letters(options) if problem_type in ("multiple choice", "grounded_qa") else None
    if letters is not None:
        if problem_type == "grounded_qa":
            chosen = [parse_grounded_choice(gt)]
        elif is_multi_answer(gt):
            chosen = "".join(gt.split()).upper().split(",")
        else:
            chosen = [parse_choice(gt)]
        if any(letter not in letters for letter in chosen):
            raise RewardDataError(
                f"{problem_type} answer {gt!r} is not among the options' letters ({', '.join(letters)})"
            )
    return gt


def _preview(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def accuracy_score(
    completion: str,
    solution: str,
    problem_type: str,
    *,
    mode: str = "train",
    fallback_whole_output: bool = False,
    multi_answer: str = "exact",
    caption_threshold: float = DEFAULT_THRESHOLD,
) -> float:
    """Accuracy in [0, 1] of one completion against its solution (stored as "<answer>X</answer>").

    mode: "train" or "eval" (only regression differs: eval uses MRA). Without an <answer> span the
    score is 0, unless `fallback_whole_output` (eval.fallback_whole_output) scores the whole output.
    multi_answer (reward.multi_answer): how a multiple-choice record with several correct letters ("A,C") is
    scored: "exact" (every letter, no other) or "soft" (TW-GRPO's partial credit, rova.rewards.choices).
    caption_threshold (reward.caption_threshold): caption recall's rule (rova.rewards.caption); the judge backend
    (reward.caption_scorer=judge) scores through rova.rewards.correctness instead.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if multi_answer not in MULTI_ANSWER_MODES:
        raise ValueError(f"multi_answer must be one of {MULTI_ANSWER_MODES}, got {multi_answer!r}")
    problem_type = canonical_problem_type(problem_type)
    gt = ground_truth(solution, problem_type)
    if not isinstance(completion, str):
        return 0.0
    pred = extract_answer(completion)
    if pred is None:
        if not fallback_whole_output:
            return 0.0
        pred = completion.strip()
    if problem_type == "multiple choice" and is_multi_answer(gt):
        score = multi_answer_score(pred, gt, multi_answer)
    elif problem_type == CAPTION:
        score = caption_recall(pred, parse_events(gt), caption_threshold)
    else:
        score = _SCORERS[problem_type](pred, gt, mode)
    return float(score) if math.isfinite(score) else 0.0


def make_accuracy_reward(
    *, mode: str = "train", fallback_whole_output: bool = False, multi_answer: str = "exact",
    caption_threshold: float = DEFAULT_THRESHOLD,
) -> Callable[..., list[float]]:
    """A TRL reward callable `(prompts, completions, solution, problem_type, **kwargs) -> list[float]`."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")

    def accuracy_reward(prompts, completions, solution, problem_type, **kwargs) -> list[float]:
        n = len(completions)
        solutions = _per_sample(solution, n, "solution")
        types = _per_sample(problem_type, n, "problem_type")
        return [
            accuracy_score(
                completion_to_text(c), s, t, mode=mode, fallback_whole_output=fallback_whole_output,
                multi_answer=multi_answer, caption_threshold=caption_threshold,
            )
            for c, s, t in zip(completions, solutions, types)
        ]

    if mode != "train" or fallback_whole_output or multi_answer != "exact":
        accuracy_reward.__name__ = accuracy_reward.__qualname__ = f"accuracy_reward_{mode}" + (
            "_fallback" if fallback_whole_output else ""
        ) + ("" if multi_answer == "exact" else f"_{multi_answer}")
    return accuracy_reward


def _per_sample(value: Any, n: int, name: str) -> list[Any]:
    if isinstance(value, str):
        return [value] * n
    values = list(value)
    if len(values) != n:
        raise ValueError(f"{name} has {len(values)} entries for {n} completions")
    return values


accuracy_reward = make_accuracy_reward()
