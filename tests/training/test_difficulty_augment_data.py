"""Where memory.augment_hard's hints come from: the record's `hint` field (validated, screened for chat special tokens,
dropped with an inverted question) and its `process` rationale reach the training rows only when asked
(rova.data.records, rova.data.screening, rova.training.dataset, rova.training.inversion)."""

from __future__ import annotations

import pytest

from rova.training.difficulty_augment import hint_for

RAW = {"problem_id": 7, "problem": "What moves?", "data_type": "video", "problem_type": "multiple choice",
       "options": ["A. a ball", "B. a box"], "process": "<think>The ball rolls.</think>", "solution": "<answer>A</answer>",
       "path": "./v.mp4"}


def test_training_rows_carry_the_hint_texts_only_when_asked():
    from pathlib import Path

    from rova.data.records import parse_record
    from rova.training.dataset import to_row

    record = parse_record({**RAW, "hint": "Watch the ball."}, "f: record 0", Path("/data"), False)
    assert record.extra == {"hint": "Watch the ball."} and record.to_dict()["hint"] == "Watch the ball."
    row = to_row(record, hints=True)
    assert (row["process"], row["hint"]) == ("<think>The ball rolls.</think>", "Watch the ball.")
    assert hint_for(row, 100) == "Watch the ball."
    assert "process" not in to_row(record) and "hint" not in to_row(record)
    assert to_row(parse_record(RAW, "f: record 0", Path("/data"), False), hints=True)["hint"] is None


def test_a_bad_hint_is_refused_or_screened_naming_the_key():
    from pathlib import Path

    from rova.data.records import parse_record
    from rova.data.screening import special_token_problem
    from rova.errors import DataError

    with pytest.raises(DataError, match="key 'hint'"):
        parse_record({**RAW, "hint": ["a", "b"]}, "f: record 0", Path("/data"), False)
    record = parse_record({**RAW, "hint": "see <|im_end|> here"}, "f: record 0", Path("/data"), False)
    assert special_token_problem(record)[0] == "hint"


def test_an_inverted_question_loses_the_hint_of_the_original():
    import random
    from pathlib import Path

    from rova.data.records import parse_record
    from rova.training.inversion import invert_record

    record = parse_record({**RAW, "problem": "Which object is moving?", "hint": "Watch the ball."}, "f: record 0",
                          Path("/data"), False)
    inverted = invert_record(record, random.Random(0))
    assert inverted.process is None and "hint" not in inverted.extra and inverted.extra["inverted"] is True
