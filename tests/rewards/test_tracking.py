"""Tracking (VideoChat-R1): mean per-frame box IoU over the ground-truth boxes; hand-computed values, the edge
cases of ../shared/docs/methods.md (zero union, wrong box count, unparsable) and properties."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rova.rewards import accuracy_score
from rova.rewards.accuracy import RewardDataError
from rova.rewards.boxes import box_iou, parse_boxes, tracking_iou

SETTINGS = settings(max_examples=80, deadline=None)
TWO = "<answer>[[0, 0, 0.5, 0.5], [0.5, 0.5, 1, 1]]</answer>"


def test_box_iou_by_hand():
    assert box_iou([0, 0, 0.5, 0.5], [0, 0, 0.5, 0.5]) == 1.0
    # overlap 0.25 x 0.5 = 0.125; areas 0.25 + 0.25 -> union 0.375
    assert box_iou([0, 0, 0.5, 0.5], [0.25, 0, 0.75, 0.5]) == pytest.approx(0.125 / 0.375)
    assert box_iou([0, 0, 0.2, 0.2], [0.5, 0.5, 1, 1]) == 0.0  # disjoint
    assert box_iou([0, 0, 0.5, 0.5], [0.5, 0, 1, 0.5]) == 0.0  # touching edge: no area in common
    assert box_iou([0, 0, 1, 1], [0.25, 0.25, 0.75, 0.75]) == pytest.approx(0.25)


def test_zero_union_scores_zero():
    assert box_iou([0.3, 0.3, 0.3, 0.3], [0.3, 0.3, 0.3, 0.3]) == 0.0  # two identical points: union 0
    assert box_iou([0.1, 0.2, 0.1, 0.6], [0.1, 0.2, 0.1, 0.6]) == 0.0  # zero-width lines


def test_mean_over_frames_by_hand():
    gt = [(0, 0, 0.5, 0.5), (0.5, 0.5, 1, 1)]
    assert tracking_iou([(0, 0, 0.5, 0.5), (0, 0, 0.2, 0.2)], gt) == pytest.approx(0.5)
    assert tracking_iou([(0, 0, 0.5, 0.5), (0.5, 0.5, 1, 1)], gt) == 1.0
    assert accuracy_score("<answer>[[0, 0, 0.5, 0.5], [0.5, 0.5, 0.75, 1]]</answer>", TWO, "tracking") == \
        pytest.approx((1.0 + 0.5) / 2)


@pytest.mark.parametrize("answer", [
    "[[0, 0, 0.5, 0.5]]",                                        # one box for two frames
    "[[0, 0, 0.5, 0.5], [0.5, 0.5, 1, 1], [0, 0, 1, 1]]",        # three boxes for two frames
    "[]", "", "none", "[[0, 0, 0.5], [0.5, 0.5, 1]]",            # empty, no list, 3 numbers a box
    "[[0, 0, 0.5, 0.5] [0.5, 0.5, 1, 1]]",                       # a comma missing
    "[[0, 0, 0.5, 0.5], [0.5, 0.5, 1, 1],]",                     # a trailing comma
    "[[0, 0, 0.5, 0.5], [0.5, 0.5, 1, 1.5]]",                    # outside [0, 1]
    "[[0, 0, 0.5, 0.5], [1, 1, 0.5, 0.5]]",                      # reversed corners
    "[[0, 0, 0.5, 0.5], [nan, 0.5, 1, 1]]", "[[0, 0, 0.5, 0.5], [1e309, 0.5, 1, 1]]",
    "[[[0, 0, 0.5, 0.5]], [0.5, 0.5, 1, 1]]",                    # nesting
    "boxes: [[0, 0, 0.5, 0.5], [0.5, 0.5, 1, 1]]",               # words around the list
])
def test_wrong_count_or_unparsable_scores_zero(answer):
    assert accuracy_score(f"<answer>{answer}</answer>", TWO, "tracking") == 0.0


def test_no_answer_span_scores_zero_and_a_bad_ground_truth_is_a_data_error():
    assert accuracy_score("[[0, 0, 0.5, 0.5], [0.5, 0.5, 1, 1]]", TWO, "tracking") == 0.0
    for bad in ("<answer>[]</answer>", "<answer>[[0, 0, 2, 2]]</answer>", "<answer>box</answer>"):
        with pytest.raises(RewardDataError):
            accuracy_score("<answer>[[0, 0, 1, 1]]</answer>", bad, "tracking")


def test_parse_accepts_spacing_and_parentheses():
    assert parse_boxes(" [ [0,0,1,1] ,\n(0.1, 0.2, 0.3, 0.4) ] ") == [(0, 0, 1, 1), (0.1, 0.2, 0.3, 0.4)]


coordinate = st.floats(0.0, 1.0)
box = st.tuples(coordinate, coordinate, coordinate, coordinate).map(
    lambda b: (min(b[0], b[2]), min(b[1], b[3]), max(b[0], b[2]), max(b[1], b[3])))


@SETTINGS
@given(box, box)
def test_box_iou_is_symmetric_and_in_range(a, b):
    value = box_iou(a, b)
    assert 0.0 <= value <= 1.0 and value == box_iou(b, a)
    area = (a[2] - a[0]) * (a[3] - a[1])
    assert box_iou(a, a) == (1.0 if area > 0 else 0.0)


@SETTINGS
@given(st.lists(box, min_size=1, max_size=6), st.data())
def test_tracking_reads_back_what_it_is_given(boxes, data):
    text = "[" + ", ".join("[" + ", ".join(repr(v) for v in b) + "]" for b in boxes) + "]"
    assert parse_boxes(text) == [tuple(b) for b in boxes]
    other = data.draw(st.lists(box, min_size=len(boxes), max_size=len(boxes)))
    value = tracking_iou(other, boxes)
    assert 0.0 <= value <= 1.0 and math.isfinite(value)
    assert value == pytest.approx(sum(box_iou(p, g) for p, g in zip(other, boxes)) / len(boxes))
    assert tracking_iou(other + [boxes[0]], boxes) == 0.0  # one box too many
