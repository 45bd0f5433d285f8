"""Read a bracketed list of number tuples ("[[0.1, 0.2, 0.5, 0.6], ...]", "[(1.5, 3.0), ...]") strictly and in
linear time: the numbers are read with one regex, and what is left (brackets and commas) must be exactly the
list's skeleton. Never `eval` model output."""

from __future__ import annotations

import math
import re

_NUMBER_RE = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_SPACE_RE = re.compile(r"\s+")


def parse_tuples(text: str, size: int) -> list[tuple[float, ...]] | None:
    """`[t, t, ...]` where each t is `[n, ...]` or `(n, ...)` with exactly `size` finite numbers; [] for "[]".

    None when the text is anything else (a stray word, a wrong tuple size, nesting, a non-finite number).
    """
    if not isinstance(text, str):
        return None
    numbers: list[float] = []

    def take(match: re.Match) -> str:
        numbers.append(float(match.group(0)))
        return "N"

    skeleton = _SPACE_RE.sub("", _NUMBER_RE.sub(take, text))
    if not all(math.isfinite(n) for n in numbers):
        return None
    count = len(numbers) // size if size else 0
    if size < 1 or len(numbers) != count * size:
        return None
    inner = ",".join(["N"] * size)
    if count == 0:
        return [] if skeleton == "[]" else None
    if skeleton[:1] != "[" or skeleton[-1:] != "]":
        return None
    parts = skeleton[1:-1].split(",")
    # Rebuild the one skeleton each tuple bracket style allows and compare: linear, no backtracking.
    tuples, i = [], 0
    for k in range(count):
        chunk = ",".join(parts[i : i + size])
        i += size
        if chunk not in (f"[{inner}]", f"({inner})"):
            return None
        tuples.append(tuple(numbers[k * size : (k + 1) * size]))
    return tuples if i == len(parts) else None
