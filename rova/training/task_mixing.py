"""data.task_mixing=per_batch for the RL trainer: TRL's RepeatSampler whose generation batches are single-kind per
process (the order: rova.data.task_mixing).

Where the grouping has to sit: TRL's GRPOTrainer draws one generation batch per process (per_device_train_batch_size
x steps_per_generation rows = P prompt groups of num_generations rows) and SHUFFLES its rows before cutting them
into the micro-batches of the steps_per_generation steps (GRPOTrainer._prepare_inputs). A micro-batch is one kind
only if the whole per-process generation batch is; that is the group: P prompts of one kind, G copies each. Each
global generation batch (what the sampler yields, num_processes x P prompts) is num_processes such groups, one per
process in rank order (accelerate hands process p the p-th dataloader batch of each round); different processes
may hold different kinds in the same step, as VideoChat-R1's GPUs do. With the difficulty memory the replay
sampler groups the whole global batch instead (rova.memory.sampler: replays are chosen per generation batch).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator, Sequence

from torch.utils.data import Sampler

from rova.data.task_mixing import batches_per_epoch, indices_by_kind, single_kind_batches
from rova.errors import DataError

log = logging.getLogger(__name__)


class SingleKindRepeatSampler(Sampler):
    """TRL's RepeatSampler invariant (each index `mini_repeat_count` times in a row, each generation batch of
    `batch_size` distinct prompts repeated `repeat_count` times, the same order on every rank), with every run of
    `group_size` prompts (one process's share) of one kind. `kinds[i]` is dataset row i's task kind."""

    def __init__(self, kinds: Sequence[str], mini_repeat_count: int, batch_size: int, repeat_count: int,
                 group_size: int, seed: int = 0):
        counts = {"mini_repeat_count": mini_repeat_count, "batch_size": batch_size, "repeat_count": repeat_count,
                  "group_size": group_size}
        for name, value in counts.items():
            if not (isinstance(value, int) and value >= 1):
                raise ValueError(f"SingleKindRepeatSampler: {name} must be an integer >= 1, got {value!r}")
        if batch_size % group_size:
            raise ValueError(f"SingleKindRepeatSampler: batch_size {batch_size} is not a multiple of group_size "
                             f"{group_size} (prompts per process)")
        self.kinds = list(kinds)
        self.mini_repeat_count = mini_repeat_count
        self.batch_size = batch_size
        self.repeat_count = repeat_count
        self.group_size = group_size
        self.groups_per_batch = batch_size // group_size
        self.seed = int(seed)
        self.epoch: int | None = None
        self._passes = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    @property
    def batches_per_epoch(self) -> int:
        return batches_per_epoch(self.kinds, self.group_size, self.groups_per_batch)

    def __iter__(self) -> Iterator[int]:
        # The epoch set by the HF Trainer (also on resume), else the passes started: a pure function of it.
        epoch = self.epoch if self.epoch is not None else self._passes
        self._passes += 1
        for batch in single_kind_batches(self.kinds, self.group_size, self.groups_per_batch, self.seed, epoch):
            for _ in range(self.repeat_count):
                for index in batch:
                    for _ in range(self.mini_repeat_count):
                        yield index

    def __len__(self) -> int:
        return self.batches_per_epoch * self.batch_size * self.mini_repeat_count * self.repeat_count


def task_mixing_report(kinds: Sequence[str], group_size: int, groups_per_batch: int, source: str = "") -> dict:
    """data_report.json's `task_mixing` for per_batch: records per kind, the prompts of one single-kind group, and
    how many records sit out each epoch (each kind's remainder, then the groups that do not fill a batch). A kind
    with fewer records than a group is never drawn (logged); data that fills no batch at all is a DataError."""
    per_kind = Counter(kinds)
    batches = batches_per_epoch(kinds, group_size, groups_per_batch)
    never = [kind for kind, indices in indices_by_kind(kinds).items() if len(indices) < group_size]
    if batches == 0:
        raise DataError(
            f"{source}: data.task_mixing=per_batch needs {groups_per_batch} group(s) of {group_size} prompts of one "
            f"task kind per generation batch, and the records per kind ({dict(sorted(per_kind.items()))}) fill none; "
            "add data, lower stage.per_device_train_batch_size, or use data.task_mixing=shuffled"
        )
    if never:
        log.warning("data.task_mixing=per_batch: %s never drawn (fewer records than the %d prompts of one group)",
                    ", ".join(never), group_size)
    return {
        "mode": "per_batch",
        "group_prompts": group_size,
        "records_per_kind": dict(sorted(per_kind.items())),
        "batches_per_epoch": batches,
        "left_out_per_epoch": len(kinds) - batches * group_size * groups_per_batch,
        "kinds_never_drawn": never,
    }
