"""rova.eval.scoring: hand-computed per-item scores for every problem type, and the aggregation."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rova.eval.scoring import (
    BINARY_TYPES,
    MRA_CONVENTION,
    ItemScore,
    aggregate,
    score_prediction,
    scoring_conventions,
)
from rova.rewards import RewardDataError


def ans(text: str) -> str:
    return f"<think>reasoning</think><answer>{text}</answer>"


# --------------------------------------------------------------------------------------------------
# score_prediction, one canned prediction per type


@pytest.mark.parametrize(
    ("completion", "expected"),
    [(ans("B"), 1.0), (ans("(B) a red car"), 1.0), (ans("b."), 1.0), (ans("C"), 0.0), (ans("A dog"), 0.0)],
)
def test_multiple_choice(completion, expected):
    result = score_prediction(completion, "<answer>B</answer>", "multiple choice")
    assert result.score == expected and result.extracted


def test_multiple_choice_answer_is_the_extracted_span():
    assert score_prediction(ans(" (B) car "), "<answer>B</answer>", "Multiple Choice") == ItemScore(1.0, True, "(B) car", 1.0)


@pytest.mark.parametrize(
    ("pred", "expected"), [("3.14159", 1.0), ("3.141", 1.0), ("3.15", 0.0), ("1,000", 0.0), ("pi", 0.0), ("nan", 0.0)]
)
def test_numerical_rounds_to_two_decimals(pred, expected):
    assert score_prediction(ans(pred), "<answer>3.14</answer>", "numerical").score == expected


def test_numerical_thousands_separator():
    assert score_prediction(ans("1,000"), "<answer>1000</answer>", "numerical").score == 1.0


def test_ocr_is_one_minus_wer():
    # reference 4 words, one substitution -> WER 1/4 -> 0.75
    assert score_prediction(ans("the cat sat down"), "<answer>the cat sat up</answer>", "OCR").score == pytest.approx(0.75)
    # 2 substitutions + 3 insertions on a 2-word reference: WER 2.5 -> clipped to 0
    assert score_prediction(ans("a b c d e"), "<answer>x y</answer>", "OCR").score == 0.0


def test_free_form_is_mean_rouge_f():
    # reference "the cat sat", prediction "the cat": R1 P=1 R=2/3 F=0.8; R2 P=1 R=1/2 F=2/3; RL LCS 2 F=0.8
    expected = (0.8 + 2 / 3 + 0.8) / 3
    result = score_prediction(ans("the cat"), "<answer>the cat sat</answer>", "free-form")
    assert result.score == pytest.approx(expected)


def test_regression_is_mra_in_eval_mode():
    # |7.3 - 10| / 10 = 0.27 < 1 - theta for theta in {0.50, 0.55, 0.60, 0.65, 0.70}: 5 of 10
    assert score_prediction(ans("7.3"), "<answer>10</answer>", "regression").score == pytest.approx(0.5)
    assert score_prediction(ans("10"), "<answer>10</answer>", "regression").score == 1.0
    assert score_prediction(ans("16"), "<answer>10</answer>", "regression").score == 0.0  # 0.6 misses every theta
    # 9.8: 0.02 < 0.05 -> all 10
    assert score_prediction(ans("9.8"), "<answer>10</answer>", "regression").score == 1.0


def test_mra_convention_is_video_r1_plus_1e8_denominator():
    # gt = 0 is scorable only with the +1e-8 denominator: 1e-10 / 1e-8 = 0.01 < 0.05 -> 1.0
    assert score_prediction(ans("1e-10"), "<answer>0</answer>", "regression").score == 1.0
    assert "1e-8" in MRA_CONVENTION and "<" in MRA_CONVENTION and "<=" not in MRA_CONVENTION
    conventions = scoring_conventions()
    assert conventions["mra"] == MRA_CONVENTION and len(conventions["mra_thresholds"]) == 10
    json.dumps(conventions)


def test_grounding_is_temporal_iou():
    # [2, 6] vs [4, 8]: intersection 2, union 6
    assert score_prediction(ans("[2, 6]"), "<answer>[4, 8]</answer>", "grounding").score == pytest.approx(1 / 3)
    assert score_prediction(ans("[10, 12]"), "<answer>[4, 8]</answer>", "grounding").score == 0.0


def test_missing_answer_is_an_extraction_failure_scored_zero():
    result = score_prediction("The answer is B", "<answer>B</answer>", "multiple choice")
    assert (result.score, result.extracted, result.answer) == (0.0, False, None)


@pytest.mark.parametrize(("completion", "solution", "problem_type", "lenient"), [
    ("B", "<answer>B</answer>", "multiple choice", 1.0),              # a base model answering without tags
    ("  (B) a red car ", "<answer>B</answer>", "multiple choice", 1.0),
    ("C", "<answer>B</answer>", "multiple choice", 0.0),
    ("3.14", "<answer>3.14</answer>", "numerical", 1.0),
])
def test_an_untagged_output_is_strict_zero_and_scored_whole_when_lenient(completion, solution, problem_type, lenient):
    result = score_prediction(completion, solution, problem_type)
    assert (result.score, result.extracted, result.lenient) == (0.0, False, lenient)
    tagged = score_prediction(f"<answer>{completion}</answer>", solution, problem_type)
    assert tagged.score == tagged.lenient == lenient and tagged.extracted  # a tagged answer scores alike both ways


def test_strict_and_lenient_accuracy_side_by_side_in_every_group():
    items = [item("b", "multiple choice", 1.0, lenient=1.0), item("b", "multiple choice", 0.0, False, lenient=1.0),
             item("b", "numerical", 0.0, False, lenient=0.0)]
    result = aggregate(items)
    assert (result["accuracy"], result["accuracy_lenient"]) == (pytest.approx(1 / 3), pytest.approx(2 / 3))
    assert result["extraction_failure_rate"] == pytest.approx(2 / 3)
    assert result["by_problem_type"]["multiple choice"]["accuracy_lenient"] == 1.0
    assert result["by_benchmark"]["b"]["accuracy_lenient"] == pytest.approx(2 / 3)
    # Predictions written before lenient scoring: no lenient number rather than a wrong one.
    assert aggregate([item("b", "numerical", 1.0)])["accuracy_lenient"] is None
    with pytest.raises(ValueError, match="lenient"):
        aggregate([item("b", "numerical", 1.0, lenient=2.0)])


def test_fallback_whole_output_scores_the_stripped_output_but_still_counts_the_failure():
    result = score_prediction("  B  ", "<answer>B</answer>", "multiple choice", fallback_whole_output=True)
    assert result == ItemScore(1.0, False, "B", 1.0)
    assert scoring_conventions(fallback_whole_output=True)["fallback_whole_output"] is True


@pytest.mark.parametrize("completion", [None, 123, b"<answer>B</answer>", ""])
def test_non_string_completion_scores_zero(completion):
    assert score_prediction(completion, "<answer>B</answer>", "multiple choice") == ItemScore(0.0, False, None, 0.0)


def test_bad_solution_or_type_is_a_data_error():
    with pytest.raises(RewardDataError):
        score_prediction(ans("B"), "B", "multiple choice")
    with pytest.raises(RewardDataError):
        score_prediction(ans("B"), "<answer>B</answer>", "essay")


@settings(max_examples=200, deadline=None)
@given(completion=st.text(max_size=200), problem_type=st.sampled_from(["multiple choice", "numerical", "regression", "grounding"]))
def test_any_completion_scores_in_range(completion, problem_type):
    solution = {"multiple choice": "<answer>A</answer>", "grounding": "<answer>[1, 2]</answer>"}.get(
        problem_type, "<answer>4</answer>"
    )
    result = score_prediction(completion, solution, problem_type)
    assert 0.0 <= result.score <= 1.0 and math.isfinite(result.score)
    assert result.extracted == (result.answer is not None)


def test_task_kinds_of_videochat_r1_and_tw_grpo_are_scored_in_eval_as_in_training():
    """Tracking: mean box IoU (graded); grounded QA: the option letter (binary); several correct letters: all of
    them (eval scores exact; the soft partial credit is a training reward, reward.multi_answer=soft)."""
    track = score_prediction(ans("[[0, 0, 0.5, 0.5], [0, 0, 0.5, 0.5]]"),
                             "<answer>[[0, 0, 0.5, 0.5], [0, 0, 1, 1]]</answer>", "tracking")
    assert track.score == pytest.approx((1.0 + 0.25) / 2) and "tracking" not in BINARY_TYPES
    assert score_prediction(ans("[[0, 0, 0.5, 0.5]]"), "<answer>[[0, 0, 0.5, 0.5], [0, 0, 1, 1]]</answer>",
                            "tracking").score == 0.0
    solution = "<answer>C</answer><glue>[(1, 2)]</glue>"
    assert score_prediction(ans("The best answer is C") + "<glue>[]</glue>", solution, "grounded_qa").score == 1.0
    assert score_prediction(ans("D"), solution, "grounded_qa").score == 0.0
    assert score_prediction(ans("C, A"), "<answer>A,C</answer>", "multiple choice").score == 1.0
    assert score_prediction(ans("A"), "<answer>A,C</answer>", "multiple choice").score == 0.0


def test_binary_types_are_canonical_names():
    from rova.rewards import PROBLEM_TYPES

    assert set(BINARY_TYPES) <= set(PROBLEM_TYPES)


# --------------------------------------------------------------------------------------------------
# aggregate


def item(benchmark, problem_type, score, extracted=True, **extra):
    return {"benchmark": benchmark, "problem_type": problem_type, "score": score, "extracted": extracted, **extra}


ITEMS = [
    item("videomme", "multiple choice", 1.0, duration="short", domain="sports"),
    item("videomme", "multiple choice", 0.0, False, duration="short", domain="news"),
    item("videomme", "multiple choice", 1.0, duration="long", domain="news"),
    item("videomme", "multiple choice", 1.0, duration="medium"),  # no domain key
    item("vsibench", "regression", 0.5, task_type="count"),
    item("vsibench", "regression", 0.7, task_type="count"),
    item("vsibench", "multiple choice", 0.0, False, task_type="route"),
]


def test_aggregate_overall_and_per_type_and_benchmark():
    result = aggregate(ITEMS, ["duration", "domain", "task_type"], skipped_media=3)
    assert result["n"] == 7
    assert result["accuracy"] == pytest.approx((1 + 0 + 1 + 1 + 0.5 + 0.7 + 0) / 7)
    assert result["extraction_failures"] == 2
    assert result["extraction_failure_rate"] == pytest.approx(2 / 7)
    assert result["skipped_media"] == 3
    assert result["by_problem_type"]["multiple choice"] == {"n": 5, "accuracy": pytest.approx(3 / 5), "accuracy_lenient": None,
                                                                 "extraction_failures": 2}
    assert result["by_problem_type"]["regression"] == {"n": 2, "accuracy": pytest.approx(0.6), "accuracy_lenient": None,
                                                          "extraction_failures": 0}
    videomme = result["by_benchmark"]["videomme"]
    assert (videomme["n"], videomme["accuracy"], videomme["extraction_failures"]) == (4, 0.75, 1)
    vsi = result["by_benchmark"]["vsibench"]
    assert vsi["accuracy"] == pytest.approx(1.2 / 3)
    json.loads(json.dumps(result))


def test_aggregate_subtasks_and_their_mean():
    result = aggregate(ITEMS, ["duration", "domain", "task_type", "absent_key"])
    assert "absent_key" not in result["by_subtask"]
    duration = result["by_subtask"]["duration"]
    assert {k: (v["n"], v["accuracy"]) for k, v in duration.items()} == {
        "long": (1, 1.0), "medium": (1, 1.0), "short": (2, 0.5)
    }
    assert result["subtask_mean"]["duration"] == pytest.approx((1 + 1 + 0.5) / 3)
    domain = result["by_subtask"]["domain"]  # the item without a domain is left out of this key only
    assert sum(v["n"] for v in domain.values()) == 3
    assert result["subtask_mean"]["domain"] == pytest.approx((0.5 + 1.0) / 2)
    # VSI-Bench official number: mean over per-task scores (count 0.6, route 0.0) = 0.3, not the item mean 0.4
    vsi = result["by_benchmark"]["vsibench"]
    assert vsi["subtask_mean"]["task_type"] == pytest.approx(0.3)
    assert vsi["by_subtask"]["task_type"]["count"]["accuracy"] == pytest.approx(0.6)
    assert "duration" not in vsi["by_subtask"]
    assert result["by_benchmark"]["videomme"]["subtask_mean"]["duration"] == pytest.approx(2.5 / 3)


def test_aggregate_skipped_media_per_benchmark():
    result = aggregate(ITEMS, [], skipped_media={"videomme": 2, "mvbench": 5})
    assert result["skipped_media"] == 7
    assert result["by_benchmark"]["videomme"]["skipped_media"] == 2
    assert result["by_benchmark"]["vsibench"]["skipped_media"] == 0
    assert result["by_benchmark"]["mvbench"] == {
        "n": 0, "accuracy": None, "accuracy_lenient": None, "extraction_failures": 0, "skipped_media": 5, "by_subtask": {}, "subtask_mean": {}
    }


def test_aggregate_empty_is_json_and_none():
    result = aggregate([], ["duration"])
    assert result["n"] == 0 and result["accuracy"] is None and result["extraction_failure_rate"] is None
    json.dumps(result, allow_nan=False)


def test_aggregate_merges_problem_type_spellings_and_stringifies_subtask_values():
    result = aggregate([item("b", "Multiple Choice", 1.0, level=1), item("b", "multiple choice", 0.0, level=2)], ["level"])
    assert result["by_problem_type"] == {"multiple choice": {"n": 2, "accuracy": 0.5, "accuracy_lenient": None,
                                                          "extraction_failures": 0}}
    assert set(result["by_subtask"]["level"]) == {"1", "2"}


@pytest.mark.parametrize(
    "bad", [{"benchmark": "b", "problem_type": "OCR", "score": 1.0}, item("b", "OCR", 1.5), item("b", "OCR", float("nan"))]
)
def test_aggregate_rejects_malformed_items(bad):
    with pytest.raises(ValueError):
        aggregate([bad])


def test_scored_items_feed_aggregate():
    records = [
        ("<answer>B</answer>", "<answer>B</answer>", "multiple choice"),
        ("B", "<answer>B</answer>", "multiple choice"),
        (ans("[2, 6]"), "<answer>[4, 8]</answer>", "grounding"),
    ]
    items = []
    for completion, solution, problem_type in records:
        scored = score_prediction(completion, solution, problem_type)
        items.append(item("demo", problem_type, scored.score, scored.extracted))
    result = aggregate(items)
    assert result["accuracy"] == pytest.approx((1 + 0 + 1 / 3) / 3)
    assert result["extraction_failures"] == 1


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 1), st.booleans(), st.sampled_from(["a", "b", "c"])), min_size=1, max_size=30))
def test_aggregate_means_are_bounded_and_counts_add_up(rows):
    items = [item("bench", "OCR", score, extracted, task=task) for score, extracted, task in rows]
    result = aggregate(items, ["task"])
    scores = [r[0] for r in rows]
    assert min(scores) - 1e-12 <= result["accuracy"] <= max(scores) + 1e-12
    assert sum(g["n"] for g in result["by_subtask"]["task"].values()) == len(rows)
    assert 0.0 <= result["extraction_failure_rate"] <= 1.0
    assert result["extraction_failures"] == sum(1 for r in rows if not r[1])


# --------------------------------------------------------------------------------------------------
# Caption recall (rova.rewards.caption): scored in eval as in training, the scorer named in the results

CAPTION_SOLUTION = "<answer>a man opens the fridge\nhe pours milk into a glass</answer>"


def test_caption_recall_is_scored_in_eval_as_in_training():
    from rova.config.reward import RewardConfig
    from rova.rewards.correctness import score_correctness

    completion = ans("A man opens the fridge.")
    item = score_prediction(completion, CAPTION_SOLUTION, "caption")
    trained = score_correctness([completion], [CAPTION_SOLUTION], ["caption"], RewardConfig()).scores[0]
    assert item.score == item.lenient == trained == 0.5 and item.judge_fallback is None
    assert "caption" not in BINARY_TYPES  # graded: a share of the events
    untagged = score_prediction("A man opens the fridge.", CAPTION_SOLUTION, "caption")
    assert (untagged.score, untagged.lenient, untagged.extracted) == (0.0, 0.5, False)
    lenient = score_prediction("a man opens the fridge", CAPTION_SOLUTION, "caption",
                               reward_config=RewardConfig(caption_threshold=0.1))
    assert lenient.lenient == 1.0  # reward.caption_threshold reaches eval


def test_eval_scores_several_letters_exactly_whatever_the_training_reward():
    from rova.config.reward import RewardConfig

    soft = RewardConfig(multi_answer="soft")
    assert score_prediction(ans("A"), "<answer>A,C</answer>", "multiple choice", reward_config=soft).score == 0.0


def test_the_caption_scorer_is_named_in_the_scoring_conventions():
    from rova.config.reward import CaptionJudgeConfig, RewardConfig
    from rova.eval.scoring import caption_conventions, caption_fields

    assert caption_conventions(RewardConfig(), [{"problem_type": "multiple choice"}]) is None  # results unchanged
    assert "caption" not in scoring_conventions()
    rule = caption_conventions(RewardConfig(), [{"problem_type": "caption"}])
    assert rule["scorer"] == "rule" and rule["threshold"] == 0.5 and rule["items"] == 1 and "judge" not in rule
    assert scoring_conventions(caption=rule)["caption"] == rule
    judge = RewardConfig(caption_scorer="judge",
                         caption_judge=CaptionJudgeConfig(base_url="http://127.0.0.1:9/v1", model="judge-m"))
    items = [{"problem_type": "caption", "judge_fallback": flag} for flag in (True, False, False, None)]
    out = caption_conventions(judge, items + [{"problem_type": "numerical"}])
    assert out["judge"] == {"base_url": "http://127.0.0.1:9/v1", "model": "judge-m"}
    assert (out["items"], out["items_judged"], out["judge_fallbacks"]) == (4, 3, 1)
    assert caption_conventions(judge, [])["items_judged"] == 0  # the judge is named even with no caption item
    flagged = ItemScore(0.5, True, "x", 0.5, judge_fallback=True)
    assert caption_fields("caption", flagged, judge) == {"caption_scorer": "judge", "judge_fallback": True}
    assert caption_fields("caption", flagged, RewardConfig()) == {"caption_scorer": "rule"}
    assert caption_fields("numerical", flagged, judge) == {}
