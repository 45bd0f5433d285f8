"""Object tracking (VideoChat-R1): one normalised box per frame shown, scored by the mean box IoU.

The answer is `[[x0, y0, x1, y1], ...]` with every coordinate in [0, 1] and x0 <= x1, y0 <= y1. The reward is
the unweighted mean over frames k of IoU(pred_k, gt_k) (intersection / union, 0 when the union is 0); a wrong
box count, an unparsable list or an invalid box scores 0. K is the number of ground-truth boxes, i.e. of frames
shown: VideoChat-R1's release shows 7 frames and asks for 8 boxes, rova asks for one box per frame shown.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from rova.rewards.numbers_list import parse_tuples

Box = tuple[float, float, float, float]


def parse_boxes(text: str) -> list[Box] | None:
    """The boxes of `[[x0, y0, x1, y1], ...]`, or None when the list is unparsable or a box is invalid."""
    boxes = parse_tuples(text, 4)
    if boxes is None:
        return None
    for x0, y0, x1, y1 in boxes:
        if not (0.0 <= x0 <= x1 <= 1.0 and 0.0 <= y0 <= y1 <= 1.0):
            return None
    return boxes  # type: ignore[return-value]


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two [x0, y0, x1, y1] boxes; 0 when the union has no area."""
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    inter = max(0.0, width) * max(0.0, height)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    if not (math.isfinite(union) and union > 0.0):
        return 0.0
    return min(1.0, max(0.0, inter / union))


def tracking_iou(pred: Sequence[Box] | None, gt: Sequence[Box]) -> float:
    """Mean per-frame box IoU over the ground-truth boxes; 0 for None or a different number of boxes."""
    if pred is None or not gt or len(pred) != len(gt):
        return 0.0
    return math.fsum(box_iou(p, g) for p, g in zip(pred, gt)) / len(gt)
