"""Grounded QA's glue IoU (VideoChat-R1): the evidence intervals `<glue>[(s, e), ...]</glue>` of a completion
against the ground truth's, as the IoU of the two interval UNIONS (rova.rewards.iou.segments_iou).

Rules (../shared/docs/methods.md, VideoChat-R1): intervals are non-negative with s <= e; an unparsable list or a
completion without a `<glue>` span scores 0. rova's choices, stated: both sets empty -> 1.0 (VideoChat-R1's code:
nothing to find and nothing claimed agree); one empty -> 0.0; a zero-length union of non-empty sets (points only)
-> 0.0 (the zero-union rule of VideoChat-R1's IoUs).
"""

from __future__ import annotations

from collections.abc import Sequence

from rova.rewards.answers import extract_tag
from rova.rewards.iou import Segment, merge_segments, segments_iou
from rova.rewards.numbers_list import parse_tuples

GLUE_TAG = "glue"


def parse_glue(text: str) -> list[Segment] | None:
    """The intervals of `[(s, e), ...]` (brackets also accepted per pair); None when malformed."""
    pairs = parse_tuples(text, 2)
    if pairs is None or any(not 0.0 <= s <= e for s, e in pairs):
        return None
    return [(s, e) for s, e in pairs]


def glue_iou(pred: Sequence[Segment] | None, gt: Sequence[Segment]) -> float:
    """IoU of the merged interval sets, with the empty / zero-union rules of the module docstring."""
    if pred is None:
        return 0.0
    if not pred and not gt:
        return 1.0
    merged_pred, merged_gt = merge_segments(pred), merge_segments(gt)
    length = sum(e - s for s, e in merged_pred) + sum(e - s for s, e in merged_gt)
    if not merged_pred or not merged_gt or length <= 0.0:
        return 0.0
    return segments_iou(merged_pred, merged_gt)


def ground_truth_glue(solution: str) -> list[Segment] | None:
    """The ground truth's intervals (None when the solution has no parsable `<glue>` span)."""
    text = extract_tag(solution, GLUE_TAG)
    return None if text is None else parse_glue(text)


def glue_score(completion: str, solution: str) -> float:
    """Glue IoU of one completion against its solution ("<answer>X</answer><glue>[...]</glue>")."""
    gt = ground_truth_glue(solution)
    if gt is None:
        from rova.rewards.accuracy import RewardDataError

        raise RewardDataError(f"grounded_qa solution {solution!r:.80} has no parsable <glue>[(s, e), ...]</glue>")
    text = extract_tag(completion, GLUE_TAG)
    return glue_iou(None if text is None else parse_glue(text), gt)
