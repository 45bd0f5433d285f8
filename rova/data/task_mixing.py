"""data.task_mixing=per_batch: an epoch's order of dataset indices in generation batches whose groups each hold one
task kind (VideoChat-R1's per-device batch of one prompt: every micro-batch is one kind).

Pure and seeded: the order is a function of (kinds, group_size, groups_per_batch, seed, epoch), the same in every
process and Python run, so every rank draws the same batches and a resumed run the same epoch. Per kind, its
indices are permuted and cut into groups of `group_size`; the last incomplete group of each kind sits this epoch
out (a different remainder each epoch, as TRL's RepeatSampler drops the last incomplete batch); the groups of all
kinds are shuffled together (each kind's share of the batches is its share of the groups) and laid out
`groups_per_batch` to a generation batch, an incomplete last batch again left out. The samplers that repeat these
batches as TRL's RepeatSampler does are rova.training.task_mixing (plain) and rova.memory.sampler (with replay).
"""

from __future__ import annotations

import random
from collections.abc import Sequence


def indices_by_kind(kinds: Sequence[str]) -> dict[str, list[int]]:
    """Dataset indices per kind, kinds in sorted order (independent of the file order of first appearance)."""
    out: dict[str, list[int]] = {}
    for index, kind in enumerate(kinds):
        out.setdefault(kind, []).append(index)
    return {kind: out[kind] for kind in sorted(out)}


def batches_per_epoch(kinds: Sequence[str], group_size: int, groups_per_batch: int = 1) -> int:
    """How many generation batches one epoch holds (the same every epoch)."""
    groups = sum(len(indices) // group_size for indices in indices_by_kind(kinds).values())
    return groups // groups_per_batch


def single_kind_batches(
    kinds: Sequence[str], group_size: int, groups_per_batch: int, seed: int, epoch: int
) -> list[list[int]]:
    """The generation batches of `epoch`: lists of group_size * groups_per_batch dataset indices, each run of
    `group_size` consecutive indices of one kind (the module docstring's rule)."""
    if group_size < 1 or groups_per_batch < 1:
        raise ValueError(f"group_size and groups_per_batch must be >= 1, got {group_size}, {groups_per_batch}")
    # A string seed is hashed with SHA-512 by random.seed: stable across processes and runs (unlike hash()).
    rng = random.Random(f"task_mixing|{seed}|{epoch}")
    groups: list[list[int]] = []
    for indices in indices_by_kind(kinds).values():
        order = list(indices)
        rng.shuffle(order)
        groups += [order[start : start + group_size] for start in range(0, len(order) - group_size + 1, group_size)]
    rng.shuffle(groups)
    count = len(groups) // groups_per_batch
    return [sum(groups[b * groups_per_batch : (b + 1) * groups_per_batch], []) for b in range(count)]
