"""Accuracy reward per problem type: the rewards.md table, by hand-made cases."""

from __future__ import annotations

import math

import pytest
from rouge_score import rouge_scorer

from rova.rewards import (
    MRA_THRESHOLDS,
    RewardDataError,
    accuracy_reward,
    accuracy_score,
    extract_answer,
    ground_truth,
    make_accuracy_reward,
    parse_choice,
    parse_number,
)


def A(text: str) -> str:
    return f"<answer>{text}</answer>"


def completion(answer: str) -> str:
    return f"<think>reasoning</think>\n<answer>{answer}</answer>"


# ------------------------------------------------------------------------------------------------
# extract_answer


@pytest.mark.parametrize(
    "text, expected",
    [
        ("<answer>B</answer>", "B"),
        ("<answer>  B \n</answer>", "B"),
        ("<answer>A</answer> then <answer>C</answer>", "C"),  # the LAST span
        ("<answer>multi\nline</answer>", "multi\nline"),  # DOTALL
        ("<answer><answer>B</answer>", "B"),  # nested opening: innermost span
        ("<answer>A</answer> stray </answer>", "A"),
        ("<answer>A</answer><answer>unclosed", "A"),
        ("<answer></answer>", ""),
        ("no tags", None),
        ("<answer>unclosed", None),
        ("</answer><answer>", None),
        ("", None),
    ],
)
def test_extract_answer(text, expected):
    assert extract_answer(text) == expected


def test_extract_answer_matches_findall_on_well_formed_text():
    import re

    text = "<think>x</think><answer>1</answer> junk <answer> 2 </answer> tail"
    assert extract_answer(text) == re.findall(r"<answer>(.*?)</answer>", text, re.DOTALL)[-1].strip()


# ------------------------------------------------------------------------------------------------
# multiple choice


@pytest.mark.parametrize("pred", ["B", "B.", "(B)", "B. a red car", "b) a red car", " b ", "(b) text", "B:", "[B]"])
def test_multiple_choice_accepts_normalised_forms(pred):
    assert accuracy_score(completion(pred), A("B"), "multiple choice") == 1.0


@pytest.mark.parametrize("pred", ["C", "A dog runs", "BC", "Option B", "The answer is B", "", "(B", "B1"])
def test_multiple_choice_rejects(pred):
    assert accuracy_score(completion(pred), A("B"), "multiple choice") == 0.0


def test_multiple_choice_ground_truth_is_normalised_too():
    assert accuracy_score(completion("C"), A("C. the third option"), "multiple choice") == 1.0
    assert parse_choice("  d)  text") == "D"
    assert parse_choice("A dog") is None


# ------------------------------------------------------------------------------------------------
# numerical


@pytest.mark.parametrize(
    "pred, gt, expected",
    [
        ("3", "3", 1.0),
        ("3.0", "3", 1.0),
        ("3.004", "3", 1.0),  # round(., 2) equal
        ("3.006", "3", 0.0),
        ("1,000,000", "1000000", 1.0),  # thousands separators removed
        ("1,234.5", "1234.50", 1.0),
        ("1e3", "1000", 1.0),
        ("-2.5", "-2.5", 1.0),
        ("1,5", "15", 0.0),  # not a thousands separator: unparsable
        ("3 apples", "3", 0.0),
        ("three", "3", 0.0),
        ("nan", "3", 0.0),
        ("inf", "3", 0.0),
        ("-inf", "3", 0.0),
        ("1e309", "3", 0.0),  # overflows to inf
        ("1_000", "1000", 0.0),  # Python float() would accept it; model output should not
        ("", "3", 0.0),
    ],
)
def test_numerical(pred, gt, expected):
    assert accuracy_score(completion(pred), A(gt), "numerical") == expected


def test_parse_number():
    assert parse_number(" 12 ") == 12.0
    assert parse_number("1,000,000.25") == 1000000.25
    assert parse_number("١٢") is None  # non-ASCII digits
    assert parse_number("nan") is None and parse_number("infinity") is None


# ------------------------------------------------------------------------------------------------
# OCR


def test_ocr_is_one_minus_wer_clipped():
    gt = A("the quick brown fox")
    assert accuracy_score(completion("the quick brown fox"), gt, "OCR") == 1.0
    assert accuracy_score(completion("the quick brown dog"), gt, "OCR") == pytest.approx(0.75)
    assert accuracy_score(completion("the quick"), gt, "OCR") == pytest.approx(0.5)
    # 4 insertions on top of 4 correct words: WER 1 -> 0; more insertions would go below 0: clipped.
    assert accuracy_score(completion("a b c d e f g h i j the quick brown fox"), gt, "OCR") == 0.0
    assert accuracy_score(completion(""), gt, "OCR") == 0.0
    # Words split on any whitespace (jiwer alone splits on " " only).
    assert accuracy_score(completion("the\nquick\tbrown  fox"), gt, "OCR") == 1.0
    # Case-sensitive, like jiwer's default.
    assert accuracy_score(completion("The quick brown fox"), gt, "OCR") == pytest.approx(0.75)


# ------------------------------------------------------------------------------------------------
# free-form


@pytest.mark.parametrize(
    "pred, gt",
    [
        ("the cats sitting on a mat", "the cat sat on the mat"),
        ("A man is running in the park.", "a man runs through a park"),
        ("completely unrelated words", "the cat sat on the mat"),
        ("the cat sat on the mat", "the cat sat on the mat"),
        ("!!!", "the cat"),
    ],
)
def test_free_form_equals_rouge_score_mean_f(pred, gt):
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    scores = scorer.score(gt, pred)
    expected = (scores["rouge1"].fmeasure + scores["rouge2"].fmeasure + scores["rougeL"].fmeasure) / 3
    assert accuracy_score(completion(pred), A(gt), "free-form") == pytest.approx(expected, abs=1e-12)


def test_free_form_identical_is_one():
    assert accuracy_score(completion("a dog runs"), A("a dog runs"), "free-form") == pytest.approx(1.0)


# ------------------------------------------------------------------------------------------------
# regression


def test_regression_train_is_relative_error():
    gt = A("10")
    assert accuracy_score(completion("10"), gt, "regression") == 1.0
    assert accuracy_score(completion("9"), gt, "regression") == pytest.approx(0.9)
    assert accuracy_score(completion("15"), gt, "regression") == pytest.approx(0.5)
    assert accuracy_score(completion("25"), gt, "regression") == 0.0  # min(1, .) caps the error
    assert accuracy_score(completion("-10"), gt, "regression") == 0.0
    assert accuracy_score(completion("0"), A("0"), "regression") == 1.0
    assert accuracy_score(completion("0.001"), A("0"), "regression") == 0.0


def test_regression_eval_is_mra():
    gt = A("10")
    # relative error 0.12: passes 1 - theta > 0.12 for theta in {0.50, ..., 0.85} -> 8 of 10.
    assert accuracy_score(completion("11.2"), gt, "regression", mode="eval") == pytest.approx(0.8)
    assert accuracy_score(completion("10"), gt, "regression", mode="eval") == 1.0
    assert accuracy_score(completion("10.3"), gt, "regression", mode="eval") == pytest.approx(1.0)
    assert accuracy_score(completion("16"), gt, "regression", mode="eval") == 0.0  # 0.6 >= 0.5
    # relative error 0.39 passes theta in {0.50, 0.55, 0.60} only.
    assert accuracy_score(completion("13.9"), gt, "regression", mode="eval") == pytest.approx(0.3)
    assert len(MRA_THRESHOLDS) == 10
    assert MRA_THRESHOLDS[0] == 0.5 and MRA_THRESHOLDS[-1] == 0.95


def test_mode_only_changes_regression():
    for problem_type, pred, gt in [("numerical", "3", "3"), ("multiple choice", "A", "A"), ("OCR", "a b", "a c")]:
        assert accuracy_score(completion(pred), A(gt), problem_type, mode="eval") == accuracy_score(
            completion(pred), A(gt), problem_type
        )
    with pytest.raises(ValueError, match="mode"):
        accuracy_score(completion("3"), A("3"), "numerical", mode="test")


# ------------------------------------------------------------------------------------------------
# grounding


def test_grounding_is_temporal_iou():
    gt = A("[10, 20]")
    assert accuracy_score(completion("[10, 20]"), gt, "grounding") == 1.0
    assert accuracy_score(completion("[15.0, 25.0]"), gt, "grounding") == pytest.approx(5 / 15)
    assert accuracy_score(completion("from 12 to 18 seconds"), gt, "grounding") == pytest.approx(0.6)
    assert accuracy_score(completion("[30, 40]"), gt, "grounding") == 0.0
    assert accuracy_score(completion("[20, 10]"), gt, "grounding") == 0.0  # reversed: malformed
    assert accuracy_score(completion("[10]"), gt, "grounding") == 0.0
    assert accuracy_score(completion("00:10 - 00:20"), gt, "grounding") == 1.0


def test_grounding_multi_segment():
    gt = A("[[0, 10], [20, 30]]")
    assert accuracy_score(completion("[[0, 10], [20, 30]]"), gt, "grounding") == 1.0
    # merged prediction [0, 30] vs ground truth of measure 20: IoU 20 / 30.
    assert accuracy_score(completion("[[0, 15], [10, 30]]"), gt, "grounding") == pytest.approx(2 / 3)


# ------------------------------------------------------------------------------------------------
# missing tag, fallback, data errors


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_missing_answer_tag_scores_zero_unless_fallback(mode):
    assert accuracy_score("B", A("B"), "multiple choice", mode=mode) == 0.0
    assert accuracy_score("B", A("B"), "multiple choice", mode=mode, fallback_whole_output=True) == 1.0
    assert accuracy_score(" 42 ", A("42"), "numerical", mode=mode, fallback_whole_output=True) == 1.0


def test_unknown_problem_type_is_a_data_error_naming_it():
    with pytest.raises(ValueError, match="'yes/no'"):
        accuracy_score(completion("yes"), A("yes"), "yes/no")
    with pytest.raises(RewardDataError):
        accuracy_score(completion("yes"), A("yes"), None)


def test_problem_type_is_case_insensitive():
    assert accuracy_score(completion("a b"), A("a b"), "ocr") == 1.0
    assert accuracy_score(completion("B"), A("B"), "Multiple Choice") == 1.0


@pytest.mark.parametrize(
    "solution, problem_type",
    [
        ("B", "multiple choice"),  # no <answer> span
        (A(""), "free-form"),
        (A("not a letter"), "multiple choice"),
        (A("n/a"), "numerical"),
        (A("inf"), "regression"),
        (A("[20, 10]"), "grounding"),
    ],
)
def test_malformed_ground_truth_is_a_data_error(solution, problem_type):
    with pytest.raises(RewardDataError, match=problem_type):
        accuracy_score(completion("B"), solution, problem_type)
    with pytest.raises(RewardDataError):
        ground_truth(solution, problem_type)


def test_ground_truth_returns_the_extracted_answer():
    assert ground_truth(A(" 12 "), "numerical") == "12"


# ------------------------------------------------------------------------------------------------
# TRL reward callables


def test_accuracy_reward_trl_signature_all_completion_shapes():
    completions = [
        completion("B"),
        [{"role": "assistant", "content": completion("C")}],
        [{"role": "assistant", "content": [{"type": "text", "text": "<think>t</think>"}, {"type": "text", "text": "<answer>12</answer>"}]}],
        [{"role": "assistant", "content": None}],
        None,
    ]
    rewards = accuracy_reward(
        prompts=["p"] * 5,
        completions=completions,
        solution=[A("B"), A("B"), A("12"), A("B"), A("B")],
        problem_type=["multiple choice", "multiple choice", "numerical", "multiple choice", "multiple choice"],
        completion_ids=[[1]] * 5,
        trainer_state=None,
    )
    assert rewards == [1.0, 0.0, 1.0, 0.0, 0.0]
    assert all(isinstance(r, float) for r in rewards)
    assert accuracy_reward.__name__ == "accuracy_reward"


def test_make_accuracy_reward_eval_mode_and_name():
    reward = make_accuracy_reward(mode="eval", fallback_whole_output=True)
    assert reward.__name__ == "accuracy_reward_eval_fallback"
    assert reward(["p"], ["11.2"], [A("10")], ["regression"]) == [pytest.approx(0.8)]
    with pytest.raises(ValueError, match="entries"):
        reward(["p", "p"], ["1", "2"], [A("1")], ["numerical", "numerical"])


def test_scores_are_plain_finite_floats():
    value = accuracy_score(completion("9"), A("10"), "regression")
    assert type(value) is float and math.isfinite(value)
