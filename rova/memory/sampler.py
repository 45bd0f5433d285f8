"""Replay sampler and dataset view: TRL's RepeatSampler with `replay_frac` of each batch from memory.

The only torch use in rova.memory (the Sampler base class and randperm, to match TRL's permutations).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import Sampler

from rova.data.task_mixing import batches_per_epoch, single_kind_batches
from rova.memory.replay import ReplayMemory
from rova.memory.views import Key, MemoryView


@dataclass(frozen=True)
class ReplayItem:
    """A sampler item that replays memory entry `key` (its view carried along: a DataLoader worker's copy
    of the memory may be older than the sampler's)."""

    index: int  # dataset index of the sample
    key: Key
    view: MemoryView


class ReplayRepeatSampler(Sampler):
    """TRL RepeatSampler (trl.trainer.utils) with memory replay.

    Same invariant: each item `mini_repeat_count` times in a row, each generation batch of `batch_size`
    distinct prompts repeated `repeat_count` times, the same order on every rank. Per generation batch,
    `memory.replay_choice` picks up to replay_frac * batch_size keys (once, kept through checkpoints); they
    take the first places (as ReplayItem) and the batch's fresh indices fill the rest, skipping any sample
    being replayed, so a batch never holds a sample twice. With nothing to replay the output equals TRL's RepeatSampler.

    The generation index is the sampler's own: epoch * batches_per_epoch + position in the epoch, where
    the epoch is the one set by set_epoch (the HF Trainer sets it, also on resume) or else the number of
    passes started. Keys are chosen when the batch is first reached (lazily), from the memory at that moment.

    With `kinds` (data.task_mixing=per_batch; kinds[i] is row i's task kind) each generation batch holds one kind,
    replays included: its fresh indices come from rova.data.task_mixing (the whole batch one group) and its replays
    only from memory entries of samples of that kind.
    """

    def __init__(
        self,
        sample_ids: Sequence[Any],
        memory: ReplayMemory,
        mini_repeat_count: int,
        batch_size: int = 1,
        repeat_count: int = 1,
        seed: int = 0,
        kinds: Sequence[str] | None = None,
    ):
        counts = {"mini_repeat_count": mini_repeat_count, "batch_size": batch_size, "repeat_count": repeat_count}
        for name, value in counts.items():
            if not (isinstance(value, int) and value >= 1):
                raise ValueError(f"ReplayRepeatSampler: {name} must be an integer >= 1, got {value!r}")
        self.sample_ids = list(sample_ids)
        self.index_of = {sample_id: i for i, sample_id in enumerate(self.sample_ids)}
        if len(self.index_of) != len(self.sample_ids):
            raise ValueError("ReplayRepeatSampler: sample_ids must be unique (they key the memory)")
        self.memory = memory
        self.mini_repeat_count = mini_repeat_count
        self.batch_size = batch_size
        self.repeat_count = repeat_count
        self.seed = int(seed)
        self.num_samples = len(self.sample_ids)
        self.epoch: int | None = None
        self._passes = 0
        self.kinds = list(kinds) if kinds is not None else None
        if self.kinds is not None and len(self.kinds) != self.num_samples:
            raise ValueError(f"ReplayRepeatSampler: {len(self.kinds)} kinds for {self.num_samples} samples")
        self.ids_of_kind: dict[str, set] = {}
        for sample_id, kind in zip(self.sample_ids, self.kinds or ()):
            self.ids_of_kind.setdefault(kind, set()).add(sample_id)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    @property
    def batches_per_epoch(self) -> int:
        if self.kinds is not None:
            return batches_per_epoch(self.kinds, self.batch_size)
        return self.num_samples // self.batch_size

    def permutation(self, epoch: int) -> list[int]:
        # TRL's RepeatSampler draws one randperm per pass from a generator seeded once; pass `epoch` of an
        # uninterrupted run is the (epoch + 1)-th draw. Recomputing it from the seed keeps resume exact.
        generator = torch.Generator().manual_seed(self.seed)
        for _ in range(epoch):
            torch.randperm(self.num_samples, generator=generator)
        return torch.randperm(self.num_samples, generator=generator).tolist()

    def fresh_batches(self, epoch: int) -> list[list[int]]:
        """The dataset indices of each generation batch of `epoch`, before replays take their places."""
        if self.kinds is not None:
            return single_kind_batches(self.kinds, self.batch_size, 1, self.seed, epoch)
        order = self.permutation(epoch)
        return [order[position * self.batch_size : (position + 1) * self.batch_size]
                for position in range(self.batches_per_epoch)]

    def generation_batch(self, generation_index: int, fresh: list[int]) -> list[int | ReplayItem]:
        """The distinct prompts of one generation batch: replays first, then fresh indices."""
        # per_batch: replay only samples of the batch's kind (every fresh index has it)
        eligible = self.index_of if self.kinds is None else self.ids_of_kind[self.kinds[fresh[0]]]
        choice = self.memory.replay_choice(generation_index, self.batch_size, eligible=eligible)
        replayed_ids = {key[0] for key, _ in choice}
        items: list[int | ReplayItem] = [ReplayItem(self.index_of[key[0]], key, view) for key, view in choice]
        items += [i for i in fresh if self.sample_ids[i] not in replayed_ids][: self.batch_size - len(items)]
        return items

    def __iter__(self) -> Iterator[int | ReplayItem]:
        epoch = self.epoch if self.epoch is not None else self._passes
        self._passes += 1
        batches = self.fresh_batches(epoch)
        for position, fresh in enumerate(batches):
            items = self.generation_batch(epoch * len(batches) + position, fresh)
            for _ in range(self.repeat_count):
                for item in items:
                    for _ in range(self.mini_repeat_count):
                        yield item

    def __len__(self) -> int:
        return self.batches_per_epoch * self.batch_size * self.mini_repeat_count * self.repeat_count


class ReplayDataset:
    """A dataset view whose items are dataset indices (the base row) or ReplayItems (a replay row)."""

    def __init__(self, base: Any, memory: ReplayMemory):
        self.base = base
        self.memory = memory
        self.sample_ids = list(base["sample_id"])

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, item: int | ReplayItem) -> dict[str, Any]:
        if isinstance(item, ReplayItem):
            return self.memory.replay_row(dict(self.base[item.index]), item.view)
        return self.base[item]
