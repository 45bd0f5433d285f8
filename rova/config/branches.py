"""The T-GRPO branch names, spelled here once (`tgrpo.branches` values; rewards, trainer, memory, metrics).

In the config layer (the lowest one that names them) and import-free, so every layer above can use it.
"""

from __future__ import annotations

CLEAN, SHUFFLED, CORRUPTED = "clean", "shuffled", "corrupted"
BRANCHES = (CLEAN, SHUFFLED, CORRUPTED)  # every branch, in generation-row and metric order
TRAINED_BRANCHES = (CLEAN, CORRUPTED)  # the shuffled branch only measures p~ for the temporal reward

__all__ = ["BRANCHES", "CLEAN", "CORRUPTED", "SHUFFLED", "TRAINED_BRANCHES"]
