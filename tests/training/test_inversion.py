"""TW-GRPO's question-answer inversion (rova.training.inversion): the negation rule, the inverted record's
options and answer, the records left alone, seeding, and the training rows built with it."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rova.data.records import VideoQARecord
from rova.inference.record_checks import record_problem
from rova.rewards.accuracy import parse_choice
from rova.training.inversion import (
    ALREADY_NEGATIVE, NOT_NEGATABLE, NOT_ONE_LETTER, OPTIONS_IN_QUESTION, TOO_FEW_OPTIONS, UNLETTERED,
    invert_records, inversion_problem, negate_question, split_option,
)

LETTERS = "ABCDEFGH"


def mc(question="What is the man doing?", texts=("running", "sitting", "eating", "reading"), answer=1,
       sample_id="r0", **kw) -> VideoQARecord:
    base = dict(
        problem_id=sample_id, problem=question, data_type="video", problem_type="multiple choice",
        options=[f"{LETTERS[i]}. {t}" for i, t in enumerate(texts)], solution=f"<answer>{LETTERS[answer]}</answer>",
        media_path="/v.mp4", process="<think>because</think>",
    )
    base.update(kw)
    return VideoQARecord(**base)


# ------------------------------------------------------------------------------------------------ negation rule


@pytest.mark.parametrize("question,negated", [
    ("What is the man doing?", "What isn't the man doing?"),
    ("Which object does the person hold?", "Which object doesn't the person hold?"),
    ("What did the person do with the clothes?", "What didn't the person do with the clothes?"),
    ("What will the person do next?", "What won't the person do next?"),
    ("Which object can the cat reach?", "Which object can't the cat reach?"),
    ("How many people are in the room?", "How many people aren't in the room?"),
    ("Which of the following will happen if the cube is removed?",
     "Which of the following won't happen if the cube is removed?"),
    ("why did the boy run", "why didn't the boy run"),       # lower case kept
    ("WHAT IS HE DOING?", "WHAT ISN'T HE DOING?"),           # capitals kept
    ("What  is   he doing?", "What  isn't   he doing?"),      # spacing kept
])
def test_the_first_auxiliary_after_the_first_word_takes_its_nt_form(question, negated):
    assert negate_question(question) == negated


@pytest.mark.parametrize("question", [
    "What happened after the man was seated?",    # no auxiliary before the clause word "after"
    "What happened to the ball?",                  # no auxiliary at all
    "Is the man running?",                         # yes/no: the first word is the auxiliary
    "Does the man who is running stop?",
    "What, if anything, is on the table?",         # the clause ends before the auxiliary
    "What isn't the man doing?",                   # already negative
    "Which object is not red?",
    "Which object cannot move?",
    "Why?",
    "",
])
def test_a_question_without_that_auxiliary_is_not_negated(question):
    assert negate_question(question) is None


def test_split_option_reads_the_forms_the_rewards_read():
    for option in ("B. a dog", "(B) a dog", "[B] a dog", "B) a dog", "B: a dog", "b. a dog"):
        assert split_option(option) == ("B", "a dog")
        assert parse_choice(option) == "B"
    assert split_option("B.") is None and split_option("a dog") is None


# ------------------------------------------------------------------------------------------------ left alone


@pytest.mark.parametrize("record,reason", [
    (mc(question="What happened to the ball?"), NOT_NEGATABLE),
    (mc(question="Is the man running?"), NOT_NEGATABLE),
    (mc(question="Which object is not red?"), ALREADY_NEGATIVE),
    (mc(texts=("only",), answer=0), TOO_FEW_OPTIONS),
    (mc(options=["A. x", "x", "C. z"]), UNLETTERED),
    (mc(options=["A. x", "A. y"], solution="<answer>A</answer>"), UNLETTERED),
    (mc(solution="<answer>A,C</answer>"), NOT_ONE_LETTER),
    (mc(solution="<answer>F</answer>"), NOT_ONE_LETTER),
    (mc(question="What is the man doing? A. running B. sitting C. eating D. reading"), OPTIONS_IN_QUESTION),
])
def test_records_that_cannot_be_inverted_are_left_alone_and_counted(record, reason):
    assert inversion_problem(record) == reason
    out, report = invert_records([record], p=1.0, seed=0)
    assert out == [record]
    assert report.inverted == 0 and report.left_alone == {reason: 1} and report.multiple_choice == 1


def test_other_problem_types_are_not_considered():
    numerical = VideoQARecord(problem_id=1, problem="How many balls are there?", data_type="video",
                              problem_type="numerical", options=[], solution="<answer>3</answer>", media_path="/v")
    out, report = invert_records([numerical], p=1.0, seed=0)
    assert out == [numerical] and report.multiple_choice == 0


def test_an_inverted_record_keeps_its_identity_drops_its_rationale_and_is_marked():
    record = mc(data_source="STAR", extra={"k": 1})
    [inverted], report = invert_records([record], p=1.0, seed=3)
    assert report.inverted == 1
    assert inverted.problem == "What isn't the man doing?"
    assert (inverted.sample_id, inverted.media_path, inverted.data_source) == (record.sample_id, "/v.mp4", "STAR")
    assert inverted.process is None and inverted.extra == {"k": 1, "inverted": True}
    assert record_problem(inverted) is None  # the load-time check (answer letters among the options) passes


# ------------------------------------------------------------------------------------------------ properties

WORDS = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=8)


@st.composite
def mc_records(draw, sample_id="r"):
    texts = draw(st.lists(WORDS, min_size=2, max_size=8, unique=True))
    question = draw(st.sampled_from(["What is the man doing?", "Which object does he hold?", "Why did it fall?",
                                     "What happened next?", "Is it red?", "What is not here?"]))
    return mc(question=question, texts=tuple(texts), answer=draw(st.integers(0, len(texts) - 1)), sample_id=sample_id)


@st.composite
def record_lists(draw):
    return [draw(mc_records(sample_id=f"r{i}")) for i in range(draw(st.integers(1, 6)))]


@settings(max_examples=60, deadline=None)
@given(record=mc_records(), seed=st.integers(0, 2**32 - 1))
def test_an_inverted_answer_is_every_option_but_the_original_correct_one(record, seed):
    [out], report = invert_records([record], p=1.0, seed=seed)
    if inversion_problem(record) is not None:  # un-negatable questions: unchanged
        assert out == record and report.inverted == 0
        return
    original = {split_option(o)[1] for o in record.options}
    correct = split_option(record.options[LETTERS.index(record.answer)])[1]
    letters = [split_option(o)[0] for o in out.options]
    texts = [split_option(o)[1] for o in out.options]
    assert letters == list(LETTERS[: len(letters)])                     # contiguous from A
    assert set(texts) <= original and len(set(texts)) == len(texts)     # a subset of the original options
    assert correct in texts and 2 <= len(texts) <= len(record.options)  # the correct one + k in 1..n-1 wrong ones
    assert out.answer.split(",") == [letter for letter, text in zip(letters, texts) if text != correct]
    assert out.problem == negate_question(record.problem)


@settings(max_examples=40, deadline=None)
@given(records=record_lists(), seed=st.integers(0, 2**32 - 1), p=st.floats(0.0, 1.0))
def test_the_same_seed_inverts_the_same_records_the_same_way(records, seed, p):
    first, report = invert_records(records, p, seed)
    again, report_again = invert_records(records, p, seed)
    assert first == again and report == report_again
    # a record's draw depends on (seed, its sample_id) only: not on its neighbours or the file order
    reversed_out, _ = invert_records(records[::-1], p, seed)
    assert reversed_out == first[::-1]
    assert report.inverted + report.not_drawn + sum(report.left_alone.values()) == report.multiple_choice


@settings(max_examples=40, deadline=None)
@given(records=record_lists(), seed=st.integers(0, 2**32 - 1))
def test_p0_is_the_identity_and_p1_inverts_every_invertible_record(records, seed):
    assert invert_records(records, 0.0, seed)[0] == records
    out, report = invert_records(records, 1.0, seed)
    for before, after in zip(records, out):
        assert (after != before) == (inversion_problem(before) is None)
    assert report.not_drawn == 0


def test_a_larger_p_inverts_a_superset_and_the_seed_matters():
    records = [mc(sample_id=f"r{i}") for i in range(200)]
    inverted = {p: {r.sample_id for r in invert_records(records, p, 7)[0] if r.extra.get("inverted")}
                for p in (0.2, 0.5)}
    assert inverted[0.2] <= inverted[0.5] and 60 < len(inverted[0.5]) < 140
    other = {r.sample_id for r in invert_records(records, 0.5, 8)[0] if r.extra.get("inverted")}
    assert other != inverted[0.5]


# ------------------------------------------------------------------------------------------------ training rows


def test_training_rows_hold_the_inverted_questions_and_the_report_counts_them(demo_file, cache_dir):
    from rova.config.compose import load_typed
    from rova.config.data import MULTI_ANSWER_TYPE_TEMPLATES
    from rova.training.dataset import load_training_data

    plain = [f"data.train_file={demo_file}", "data.build_demo=false", "data.probe_workers=1"]
    overrides = plain + ["data.invert_questions.p=1"]
    data_cfg = load_typed(overrides).data
    data = load_training_data(data_cfg, 28, cache_dir, seed=5)
    records = json.loads(demo_file.read_text())
    choice = [r for r in records if r["problem_type"] == "multiple choice"]
    report = data.inversion
    assert report.multiple_choice == len(choice) and report.seed == 5 and report.p == 1.0
    assert report.inverted == sum(r["problem"].startswith("Which way does") for r in choice) > 0
    assert report.left_alone == {NOT_NEGATABLE: report.multiple_choice - report.inverted}
    rows = [row for row in data.dataset if row["problem_type"] == "multiple choice"]
    wording = MULTI_ANSWER_TYPE_TEMPLATES["multiple answers"]
    # every multiple-choice prompt, inverted or not, asks in the several-letters wording
    assert all(row["prompt"][-1]["content"][-1]["text"].endswith(wording) for row in rows)
    assert sum("doesn't" in row["problem"] for row in rows) == report.inverted
    # data.invert_questions.seed overrides the stage seed; the same seed rebuilds the same rows
    seeded = load_typed(overrides + ["data.invert_questions.seed=5"]).data
    assert list(load_training_data(seeded, 28, cache_dir, seed=99).dataset) == list(data.dataset)
    assert load_training_data(load_typed(plain).data, 28, cache_dir).inversion is None
