"""Where a generated completion ends: at its first end-of-sequence token, kept."""

from __future__ import annotations

from collections.abc import Collection, Sequence


def cut_at_eos(tokens: Sequence[int], eos_ids: Collection[int]) -> list[int]:
    """The tokens up to and including the first one in `eos_ids`; all of them when none is (a truncated
    completion). What follows the end (padding of a shorter row, or a stop token's tail) is dropped."""
    for i, token in enumerate(tokens):
        if token in eos_ids:
            return list(tokens[: i + 1])
    return list(tokens)
