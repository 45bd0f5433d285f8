"""The progress line of a long generation job (stage=eval, stage=cot)."""

from __future__ import annotations

import time


class Progress:
    """One line per batch on rank 0: items done / total, items/s, ETA."""

    def __init__(self, total: int, enabled: bool, label: str = "eval"):
        self.total, self.done, self.enabled, self.start = total, 0, enabled, time.monotonic()
        self.label = label

    def advance(self, n: int, cell: str) -> None:
        self.done += n
        if not self.enabled or self.total == 0 or n == 0:
            return
        rate = self.done / max(time.monotonic() - self.start, 1e-9)
        eta = (self.total - self.done) / rate if rate > 0 else float("inf")
        print(f"[rova] {self.label} {self.done}/{self.total} ({100 * self.done / self.total:.0f}%) {cell:<18} "
              f"{rate:.2f} items/s  ETA {eta:.0f}s", flush=True)
