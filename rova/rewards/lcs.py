"""The longest common subsequence of two token lists: ROUGE-L (free-form accuracy) and caption recall both use it."""

from __future__ import annotations


def lcs_length(a: list[str], b: list[str]) -> int:
    """Length of the longest common subsequence, O(len(a) * len(b) / word size) with Python big ints (the
    bit-parallel algorithm of Hyyro 2004)."""
    if len(a) > len(b):
        a, b = b, a
    if not a:
        return 0
    match_masks: dict[str, int] = {}
    for i, token in enumerate(a):
        match_masks[token] = match_masks.get(token, 0) | (1 << i)
    full = (1 << len(a)) - 1
    row = full
    for token in b:
        matches = row & match_masks.get(token, 0)
        row = ((row + matches) | (row - matches)) & full
    return len(a) - row.bit_count()
