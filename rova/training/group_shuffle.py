"""Shuffle a rollout's rows so that each of its micro-batches holds whole prompt groups (Reg-GRPO).

TRL's GRPOTrainer shuffles a process's rollout rows (`shuffle_sequence_dict`, one `torch.randperm` over rows) and
cuts them into `steps_per_generation` equal micro-batches, which splits prompt groups. Reg-GRPO's loss needs each
group whole (its implicit advantage is centred on the group's mean log-ratio: rova.training.reg_grpo), so with
objective.advantage_regression rova shuffles GROUPS instead: the groups of each size (clean groups of
num_generations rows, the corrupted branch's of tgrpo.corrupted_generations) are shuffled and dealt evenly over the
micro-batches, and each micro-batch's groups are put in a random order. Every micro-batch then has the same number
of rows and of groups of each size; the draws come from torch's global generator, as TRL's row shuffle does.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import torch


def whole_group_order(group_ids: Sequence[int] | torch.Tensor, chunks: int,
                      generator: torch.Generator | None = None) -> torch.Tensor:
    """A permutation of the rows whose `chunks` equal contiguous slices each hold whole groups.

    group_ids: one id per row (rows of a group share it, in any positions). Raises ValueError when the groups of
    some size cannot be dealt evenly (their number is not a multiple of `chunks`).
    """
    ids = torch.as_tensor(group_ids).reshape(-1).tolist()
    if chunks < 1:
        raise ValueError(f"chunks must be >= 1, got {chunks}")
    rows_of: dict[Any, list[int]] = defaultdict(list)
    for row, group in enumerate(ids):
        rows_of[group].append(row)
    by_size: dict[int, list[list[int]]] = defaultdict(list)
    for rows in rows_of.values():  # first-seen order, so the result depends on the draws only
        by_size[len(rows)].append(rows)
    bins: list[list[list[int]]] = [[] for _ in range(chunks)]
    for size in sorted(by_size):
        groups = by_size[size]
        if len(groups) % chunks:
            raise ValueError(f"{len(groups)} groups of {size} rows cannot be dealt evenly over {chunks} micro-batches")
        order = torch.randperm(len(groups), generator=generator).tolist()
        for position, index in enumerate(order):
            bins[position % chunks].append(groups[index])
    order: list[int] = []
    for groups in bins:
        for index in torch.randperm(len(groups), generator=generator).tolist():
            order.extend(groups[index])
    return torch.tensor(order, dtype=torch.long)


def permute_rows(batch: dict[str, Any], order: torch.Tensor) -> dict[str, Any]:
    """Every per-row value of `batch` in `order` (TRL's shuffle_sequence_dict with a given permutation): tensors of
    rank >= 1 and lists are reordered, None and scalars kept."""
    def permute(value):
        if value is None or (isinstance(value, torch.Tensor) and value.ndim == 0):
            return value
        if isinstance(value, torch.Tensor):
            return value[order.to(value.device)]
        return [value[i] for i in order.tolist()]

    return {key: permute(value) for key, value in batch.items()}
