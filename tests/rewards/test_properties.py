"""Property tests: every reward is total (finite, in range, never raises) on any model output."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rouge_score import rouge_scorer

from rova.rewards import (
    FORMAT_PATTERN,
    PROBLEM_TYPES,
    accuracy_score,
    extract_answer,
    format_score,
    length_bonus,
    segments_iou,
    temporal_bonus,
)
from rova.rewards.accuracy import lcs_length

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

FRAGMENTS = [
    "<answer>", "</answer>", "<think>", "</think>", "<answer", "answer>", "nan", "inf", "-inf", "1e309",
    "1,000,000", "-1e-5", "[", "]", ",", "-", ":", ".", "(", ")", "B", "b)", " ", "\n", "\t", "\x00",
    "\ud800", "\u00a0", "\u3000", "\x1c", "ß", "İ", "的", "0", "7", "12.5", "00:12", "the", "cats", "running",
]
model_output = st.one_of(
    st.text(max_size=200),
    st.lists(st.sampled_from(FRAGMENTS), max_size=30).map("".join),
    st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
)
SOLUTIONS = {
    "multiple choice": ["<answer>B</answer>", "<answer>(c) a dog</answer>"],
    "numerical": ["<answer>1,000</answer>", "<answer>-2.5</answer>"],
    "OCR": ["<answer>the quick brown fox</answer>"],
    "free-form": ["<answer>a man is running in the park</answer>"],
    "regression": ["<answer>0</answer>", "<answer>12.5</answer>"],
    "grounding": ["<answer>[1.5, 7]</answer>", "<answer>[[0, 2], [5, 9]]</answer>"],
    "grounded_qa": ["<answer>B</answer><glue>[(1.5, 7)]</glue>", "<answer>The best answer is C</answer><glue>[]</glue>"],
    "tracking": ["<answer>[[0.1, 0.1, 0.5, 0.5]]</answer>", "<answer>[[0, 0, 1, 1], [0.2, 0.2, 0.4, 0.9]]</answer>"],
    "caption": ["<answer>the cats running</answer>", "<answer>1. a man runs\n- the 的 cat sat, 12.5\n\n</answer>"],
}


@SETTINGS
@given(
    completion=model_output,
    problem_type=st.sampled_from(PROBLEM_TYPES),
    mode=st.sampled_from(["train", "eval"]),
    fallback=st.booleans(),
    data=st.data(),
)
def test_accuracy_is_total_and_in_range(completion, problem_type, mode, fallback, data):
    solution = data.draw(st.sampled_from(SOLUTIONS[problem_type]))
    for text in (completion, f"<answer>{completion}</answer>", f"<think>x</think><answer>{completion}"):
        score = accuracy_score(text, solution, problem_type, mode=mode, fallback_whole_output=fallback)
        assert type(score) is float and math.isfinite(score) and 0.0 <= score <= 1.0


@SETTINGS
@given(st.lists(st.sampled_from(["<think>", "</think>", "<answer>", "</answer>", " ", "\n", "\x1c", "\u00a0", "a", "<"]), max_size=14).map("".join))
def test_format_score_equals_the_spec_regex(text):
    expected = 1.0 if re.match(FORMAT_PATTERN, text, re.DOTALL) else 0.0
    assert format_score(text) == expected


@SETTINGS
@given(model_output)
def test_format_score_is_binary(text):
    assert format_score(text) in (0.0, 1.0)


@SETTINGS
@given(prefix=model_output, content=model_output, suffix=model_output)
def test_extract_answer_takes_the_last_span(prefix, content, suffix):
    content = content.replace("<answer>", "").replace("</answer>", "")
    suffix = suffix.replace("</answer>", "")
    assert extract_answer(f"{prefix}<answer>{content}</answer>{suffix}") == content.strip()


@SETTINGS
@given(model_output)
def test_extract_answer_never_returns_a_tag(text):
    answer = extract_answer(text)
    assert answer is None or ("<answer>" not in answer and "</answer>" not in answer)


words = st.lists(st.sampled_from(["a", "b", "c", "d", "the", "cat", "cats", "running", "runs"]), max_size=25)


@SETTINGS
@given(words, words)
def test_lcs_matches_rouge_score_table(a, b):
    from rouge_score.rouge_scorer import _lcs_table

    expected = _lcs_table(a, b)[-1][-1] if a and b else 0
    assert lcs_length(a, b) == expected


@SETTINGS
@given(words.map(" ".join), words.map(" ".join))
def test_free_form_matches_rouge_score(pred, gt):
    if not gt.strip():
        return  # an empty ground truth is a data error
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    scores = scorer.score(gt, pred)
    expected = (scores["rouge1"].fmeasure + scores["rouge2"].fmeasure + scores["rougeL"].fmeasure) / 3
    got = accuracy_score(f"<answer>{pred}</answer>", f"<answer>{gt}</answer>", "free-form")
    assert got == pytest.approx(expected, abs=1e-12)


segment = st.tuples(st.floats(-100, 100), st.floats(0, 50)).map(lambda s: (s[0], s[0] + s[1]))


@SETTINGS
@given(st.lists(segment, max_size=5), st.lists(segment, max_size=5))
def test_iou_is_symmetric_and_in_range(pred, gt):
    iou = segments_iou(pred, gt)
    assert 0.0 <= iou <= 1.0
    assert iou == pytest.approx(segments_iou(gt, pred))
    if gt and sum(e - s for s, e in gt) > 0:
        assert segments_iou(gt, gt) == 1.0


@SETTINGS
@given(
    st.lists(st.tuples(st.floats(0, 1), st.integers(0, 1000)), min_size=1, max_size=8),
    st.floats(0, 1),
)
def test_length_bonus_values(pairs, bonus):
    acc, lengths = zip(*pairs)
    out = length_bonus(acc, lengths, len_min=320, len_max=512, bonus=bonus)
    assert out.shape == (len(acc),)
    assert set(np.unique(out)) <= {0.0, bonus}
    if sum(a > 0.1 for a in acc) <= 1:
        assert not out.any()


@SETTINGS
@given(
    st.integers(1, 5).flatmap(
        lambda n: st.tuples(
            st.lists(st.lists(st.sampled_from([0.0, 0.05, 0.5, 1.0]), min_size=4, max_size=4), min_size=n, max_size=n),
            st.lists(st.lists(st.sampled_from([0.0, 0.5, 1.0, np.nan]), min_size=2, max_size=2), min_size=n, max_size=n),
        )
    )
)
def test_temporal_bonus_rows_are_independent(matrices):
    ordered, shuffled = (np.array(m, dtype=float) for m in matrices)
    bonus, _, _ = temporal_bonus(ordered, shuffled, alpha=0.3, mu=0.8)
    for i in range(len(ordered)):
        row, _, _ = temporal_bonus(ordered[i : i + 1], shuffled[i : i + 1], alpha=0.3, mu=0.8)
        np.testing.assert_array_equal(bonus[i], row[0])
    assert set(np.unique(bonus)) <= {0.0, 0.3}


MEGABYTE = 1 << 20
HUGE = [
    "x" * MEGABYTE,
    "<answer>" + "running cats houses 12 " * (MEGABYTE // 23) + "</answer>",
    "<answer>" + "1," * (MEGABYTE // 2) + "</answer>",
    "<answer>" + "9" * MEGABYTE + "</answer>",
    "<answer>" + " " * MEGABYTE + "B</answer>",
    "<think>" + "</think><answer>" * (MEGABYTE // 16) + "x",
    "<think>" + "</think>" + " " * MEGABYTE + "</answer>",
    "<answer>" * (MEGABYTE // 8) + "</answer>" * (MEGABYTE // 9),
    bytes(range(256)).decode("latin-1") * (MEGABYTE // 256),
    "<answer>" + "123," * (MEGABYTE // 4) + "x</answer>",
    "<answer>" + "1." * (MEGABYTE // 2) + "</answer>",
    "<answer>" + "1:" * (MEGABYTE // 2) + "</answer>",
    "<answer>(" * (MEGABYTE // 9),
]


NASTY = ["", " ", "nan", "inf", "-inf", "1e309", "-1e309", "1,000,000", "NaN", "Infinity", "\x00\xff\ud800",
         "<answer>", "</answer>", "<answer><answer>B</answer>", "<answer>B</answer></answer>", "<think><answer>",
         "<answer>nan</answer>", "<answer>inf</answer>", "<answer>1e309</answer>", "<answer>-inf</answer>",
         "<answer>1,000,000</answer>", "<answer>[nan, inf]</answer>", "<answer>[1e309, 1e310]</answer>"]


@pytest.mark.parametrize("text", NASTY)
@pytest.mark.parametrize("problem_type", PROBLEM_TYPES)
def test_nasty_outputs_score_in_range(text, problem_type):
    for mode in ("train", "eval"):
        for fallback in (False, True):
            score = accuracy_score(text, SOLUTIONS[problem_type][0], problem_type, mode=mode, fallback_whole_output=fallback)
            assert type(score) is float and math.isfinite(score) and 0.0 <= score <= 1.0
    assert format_score(text) in (0.0, 1.0)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("index", range(len(HUGE)))
def test_huge_outputs_are_scored_without_blowing_up(index):
    # Guards against quadratic regex backtracking (minutes on 1 MB); not a performance assertion.
    text = HUGE[index]
    assert format_score(text) in (0.0, 1.0)
    for problem_type, solutions in SOLUTIONS.items():
        score = accuracy_score(text, solutions[0], problem_type, fallback_whole_output=True)
        assert math.isfinite(score) and 0.0 <= score <= 1.0
