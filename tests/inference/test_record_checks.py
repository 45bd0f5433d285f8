"""A record is usable when the rewards can parse its ground truth and its text holds no chat special token
(issue 22, defects 6 and 7); the shipped datasets and the real MMVU file are all usable."""

from __future__ import annotations

from pathlib import Path

import pytest

from rova.data.records import VideoQARecord, load_records
from rova.inference.record_checks import record_problem, screen
from tests.conftest import shared_data_or_skip

OPTIONS = ["A. left", "B. right", "C. up", "D. down"]


def record(problem_type: str, solution: str, options=None, **fields) -> VideoQARecord:
    values = dict(problem_id=1, problem="q?", data_type="video", problem_type=problem_type,
                  options=list(OPTIONS if options is None else options), solution=solution, media_path="/v.mp4")
    return VideoQARecord(**{**values, **fields})


BAD = [
    ("multiple choice", "B", "no <answer>"),                              # the record: no tags
    ("multiple choice", "<answer>F</answer>", "not among the options"),   # a letter the question does not offer
    ("multiple choice", "<answer>A,F</answer>", "not among the options"),
    ("multiple choice", "<answer>the left one</answer>", "cannot be parsed"),
    ("numerical", "<answer>many</answer>", "cannot be parsed"),
    ("numerical", "<answer>nan</answer>", "cannot be parsed"),
    ("regression", "<answer>3 m</answer>", "cannot be parsed"),
    ("grounding", "<answer>[2.5, 1.0]</answer>", "cannot be parsed"),   # ends before it starts
    ("grounding", "<answer>soon</answer>", "cannot be parsed"),
    ("grounded_qa", "<answer>A</answer>", "cannot be parsed"),            # no <glue> span
    ("grounded_qa", "<answer>E</answer><glue>[(1, 2)]</glue>", "not among the options"),
    ("tracking", "<answer>[[0, 0, 2, 1]]</answer>", "cannot be parsed"),  # a box outside [0, 1]
    ("free-form", "<answer></answer>", "empty answer"),
    ("OCR", "STORM", "no <answer>"),
    ("caption", "<answer>a man runs\n--</answer>", "has no letter or digit"),  # an event that can never be covered
]


@pytest.mark.parametrize("problem_type,solution,why", BAD, ids=[f"{t}:{s}" for t, s, _ in BAD])
def test_a_ground_truth_the_rewards_cannot_score_is_found(problem_type, solution, why):
    options = [] if problem_type in ("numerical", "regression", "grounding", "tracking", "free-form", "OCR",
                                     "caption") else None
    found = record_problem(record(problem_type, solution, options))
    assert found is not None and found[0] == "solution" and why in found[1], found


GOOD = [
    ("multiple choice", "<answer>B</answer>"),
    ("multiple choice", "<answer>(c)</answer>"),
    ("multiple choice", "<answer>A, C</answer>"),
    ("numerical", "<answer>1,000</answer>"),
    ("regression", "<answer>-2.5e3</answer>"),
    ("grounding", "<answer>[1.5, 2.5]</answer>"),
    ("grounded_qa", "<answer>The best answer is B</answer><glue>[(1, 2), (3, 4)]</glue>"),
    ("tracking", "<answer>[[0.1, 0.2, 0.5, 0.6]]</answer>"),
    ("free-form", "<answer>It moves.</answer>"),
    ("OCR", "<answer>STORM</answer>"),
    ("caption", "<answer>1. a man runs\n2. he falls</answer>"),
]


@pytest.mark.parametrize("problem_type,solution", GOOD, ids=[f"{t}:{s}" for t, s in GOOD])
def test_a_good_ground_truth_passes(problem_type, solution):
    assert record_problem(record(problem_type, solution)) is None


def test_options_without_letters_leave_the_letter_unchecked():
    # The letter cannot be compared with options that carry none; the rewards still parse the answer.
    assert record_problem(record("multiple choice", "<answer>E</answer>", ["left", "right"])) is None


def test_special_tokens_are_found_before_the_answer_and_the_family_list_counts():
    found = record_problem(record("multiple choice", "<answer>A</answer>",
                                  problem="<|vision_start|><|video_pad|><|vision_end|> Which way?"))
    assert found[0] == "problem" and "<|video_pad|>" in found[1]
    assert record_problem(record("multiple choice", "<answer>A</answer>", problem="[IMG] which?"),
                          special_tokens=["[IMG]"])[0] == "problem"


@pytest.mark.parametrize("task", ["demo", "shapes"])
def test_the_procedural_datasets_have_no_bad_record(task, tmp_path):
    from rova.data.procedural import build_procedural

    path = build_procedural(task, tmp_path / task, 24, "train")
    records = load_records(path)
    kept, bad = screen(records, source=str(path), max_bad_fraction=1.0, fraction_key="data.max_bad_fraction")
    assert not bad and len(kept) == len(records) == 24


def test_the_real_mmvu_file_has_no_bad_record():
    path = shared_data_or_skip("benchmarks", "eval_mmvu.json")
    records = load_records(path, media_root=Path("/unused"))
    kept, bad = screen(records, source=str(path), max_bad_fraction=1.0, fraction_key="data.max_bad_fraction")
    assert len(records) == 625 and not bad, [b.message() for b in bad[:5]]
