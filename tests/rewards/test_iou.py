"""Temporal IoU rules: single, multi-segment merge, disjoint, degenerate, parsing."""

from __future__ import annotations

import pytest

from rova.rewards import interval_iou, merge_segments, parse_segments, segments_iou


def test_single_interval_iou():
    assert interval_iou((0, 10), (0, 10)) == 1.0
    assert interval_iou((0, 10), (5, 15)) == pytest.approx(5 / 15)
    assert interval_iou((2, 4), (0, 10)) == pytest.approx(0.2)  # contained
    assert interval_iou((0, 10), (2, 4)) == pytest.approx(0.2)  # symmetric


def test_disjoint_and_touching_intervals_score_zero():
    assert interval_iou((0, 5), (6, 10)) == 0.0
    assert interval_iou((0, 5), (5, 10)) == 0.0


def test_degenerate_intervals():
    assert interval_iou((5, 5), (5, 5)) == 1.0  # identical points
    assert interval_iou((5, 5), (6, 6)) == 0.0
    assert interval_iou((5, 5), (0, 10)) == 0.0  # a point has no overlap measure
    assert interval_iou((0, 10), (5, 5)) == 0.0


def test_merge_segments():
    assert merge_segments([(20, 30), (0, 10), (5, 12), (12, 14)]) == [(0, 14), (20, 30)]
    assert merge_segments([]) == []


def test_multi_segment_iou_uses_merged_intervals():
    gt = [(0, 10), (20, 30)]
    assert segments_iou(gt, gt) == 1.0
    assert segments_iou([(20, 30), (0, 10)], gt) == 1.0  # order does not matter
    # overlapping predicted pieces are merged first: no double counting of [5, 10].
    assert segments_iou([(0, 10), (5, 10), (20, 30)], gt) == 1.0
    # prediction [0, 30] covers the gap: 20 / 30.
    assert segments_iou([(0, 30)], gt) == pytest.approx(2 / 3)
    # one of two ground-truth segments found exactly: 10 / 20.
    assert segments_iou([(0, 10)], gt) == pytest.approx(0.5)
    assert segments_iou([(11, 19)], gt) == 0.0  # disjoint, inside the gap
    assert segments_iou([], gt) == 0.0


def test_overflowing_lengths_give_zero_not_nan():
    assert segments_iou([(-1e308, 1e308)], [(0.0, 1.0)]) == 0.0


@pytest.mark.parametrize(
    "text, expected",
    [
        ("[12.5, 30]", [(12.5, 30.0)]),
        ("12.5-30 seconds", [(12.5, 30.0)]),
        ("12.5 - 30", [(12.5, 30.0)]),
        ("[[1, 2], [5, 7]]", [(1.0, 2.0), (5.0, 7.0)]),
        ("from 00:12 to 01:02", [(12.0, 62.0)]),
        ("1:00:00 - 1:00:30", [(3600.0, 3630.0)]),
        ("[-1, 2]", [(-1.0, 2.0)]),
        ("[.5, 1.]", [(0.5, 1.0)]),
    ],
)
def test_parse_segments(text, expected):
    assert parse_segments(text) == expected


@pytest.mark.parametrize("text", ["", "no numbers", "[1, 2, 3]", "[5, 1]", "9" * 400 + " 1"])
def test_parse_segments_malformed(text):
    assert parse_segments(text) is None
