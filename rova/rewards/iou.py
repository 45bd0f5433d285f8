"""Temporal IoU of [start, end] segments (seconds), single or multi-segment.

Multi-segment IoU is the IoU of the merged interval sets: |union(P) & union(G)| / |union(P) | union(G)|.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence

Segment = tuple[float, float]

# A time is "hh:mm:ss(.f)", "mm:ss(.f)" or a plain decimal. A sign only counts when it does not follow
# a digit, so "12.5-30" reads as 12.5 and 30, not 12.5 and -30. Each alternative is a simple run,
# so scanning is linear even on a megabyte of digits.
_TIME_RE = re.compile(
    r"(?<![0-9.])(-?)"
    r"(?:([0-9]+(?::[0-9]{1,2}){1,2}(?:\.[0-9]+)?)|([0-9]+(?:\.[0-9]*)?|\.[0-9]+))"
)


def parse_segments(text: str) -> list[Segment] | None:
    """Read segments from text such as "[12.5, 30]", "12.5-30 s", "[[1, 2], [5, 7]]", "00:12 to 00:30".

    Numbers are paired in order of appearance. Returns None (malformed) when there is no number, an odd
    count, a non-finite value, or a segment whose start is after its end.
    """
    if not isinstance(text, str):
        return None
    values: list[float] = []
    for match in _TIME_RE.finditer(text):
        sign, clock, plain = match.groups()
        if clock is not None:
            value = 0.0
            for part in clock.split(":"):
                value = value * 60.0 + float(part)
        else:
            value = float(plain)
        if sign:
            value = -value
        if not math.isfinite(value):
            return None
        values.append(value)
    if not values or len(values) % 2:
        return None
    segments = [(values[i], values[i + 1]) for i in range(0, len(values), 2)]
    if any(start > end for start, end in segments):
        return None
    return segments


def merge_segments(segments: Iterable[Segment]) -> list[Segment]:
    """Sorted, disjoint union of the segments (touching segments are joined)."""
    merged: list[list[float]] = []
    for start, end in sorted(segments):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(start, end) for start, end in merged]


def _total_length(segments: Sequence[Segment]) -> float:
    return math.fsum(end - start for start, end in segments)


def _intersection_length(a: Sequence[Segment], b: Sequence[Segment]) -> float:
    """Measure of the intersection of two merged (sorted, disjoint) segment lists."""
    i = j = 0
    parts = []
    while i < len(a) and j < len(b):
        low = max(a[i][0], b[j][0])
        high = min(a[i][1], b[j][1])
        if high > low:
            parts.append(high - low)
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return math.fsum(parts)


def segments_iou(pred: Sequence[Segment], gt: Sequence[Segment]) -> float:
    """IoU in [0, 1] of the merged prediction and ground-truth segment sets.

    Degenerate case: when the union has zero length (every segment is a point), the score is 1 if the
    two merged point sets are identical and 0 otherwise. Overflowing lengths give 0, never NaN.
    """
    p = merge_segments(pred)
    g = merge_segments(gt)
    if not p or not g:
        return 0.0
    inter = _intersection_length(p, g)
    union = _total_length(p) + _total_length(g) - inter
    if not (math.isfinite(inter) and math.isfinite(union)):
        return 0.0
    if union <= 0.0:
        return 1.0 if p == g else 0.0
    return min(1.0, max(0.0, inter / union))


def interval_iou(pred: Segment, gt: Segment) -> float:
    """IoU of two single [start, end] intervals (see `segments_iou` for the degenerate rule)."""
    return segments_iou([tuple(pred)], [tuple(gt)])
