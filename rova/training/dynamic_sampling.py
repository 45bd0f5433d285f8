"""DAPO's dynamic sampling, the pure part (DAPO, arXiv 2503.14476, Sec. 3.2; verl's recipe/dapo `filter_groups`).

A prompt group whose trained clean reward is the same for all its G completions has a zero advantage: no
learning signal, only a smaller effective batch. With `objective.dynamic_sampling` such groups are dropped after
scoring and their places in the batch are filled by groups of freshly drawn prompts, generated and scored the
same way, round after round, until every place holds a group with signal or `objective.max_sampling_rounds`
generation rounds (the first included) have run. A place that still holds an all-equal group at the cap keeps
it, masked out of the loss as memory.variance_filter masks it, and counted (`short`).

The test is on the clean branch's trained (total) reward; a prompt's shuffled and corrupted groups go with its
clean group, dropped or kept together. Places keep their order: the batch's groups with signal stay where they
were, and the drawn groups take the dropped places in the order they were drawn, so each process still holds
whole prompt groups, rows [g*G, (g+1)*G) of the clean branch (rova.training.trainer's invariant).

Generation is collective (ZeRO-3 gathers, vLLM), so every process runs the same rounds and draws the same
number of prompts per round: the most any process still needs (`draw_count`, from the gathered needs). A
process that needs fewer leaves the extra groups with signal untrained (`unused`).

Fresh prompts come from a side order over the training dataset (`refill_order`): permutations seeded by
(stage.seed, the rollout's key = (global step, rollout at that step)), dealt round-robin to the processes,
independent of the trainer's sampler; a prompt the process already holds in this rollout is skipped
(`take_fresh`). The same seed gives the same draws. Nothing is kept between rollouts and no state goes into a
checkpoint: a run resumed from a checkpoint draws from the same order at the same rollout as the uninterrupted
run (same seed, world size and data), so its draws are the same as far as its rollouts are (which groups come
out all-equal depends on the sampled completions, whose RNG state the checkpoint restores).

Everything here is plain Python / numpy on hand-made values (tests/training/test_dynamic_sampling.py); the
trainer generates, gathers and logs.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from rova.config.branches import BRANCHES, CLEAN
from rova.inference.seeding import stable_seed
from rova.training.rollout_metrics import MEAN, SUM, MetricValues
from rova.training.scoring import BranchScores, GenerationPlan, plan_generation, zero_std_groups

Pick = tuple[int, int]  # (round, prompt group of that round)


def all_equal_groups(totals: np.ndarray) -> np.ndarray:
    """bool per group of `totals` [groups, G]: every completion got the same reward, up to float rounding.

    The same test as the loss mask of memory.variance_filter (scoring.zero_std_groups: std within 1e-8), so a
    group the refill keeps always has signal in the loss, and one it leaves at the cap is always masked.
    """
    return zero_std_groups(np.asarray(totals, dtype=np.float64))


def draw_count(needs: Sequence[int], rounds_done: int, max_rounds: int) -> int:
    """Prompts every process draws in the next generation round; 0 = stop.

    `needs` are the open places of every process (gathered, so every process computes the same number and runs
    the same rounds); `rounds_done` counts the generation rounds so far, the first included.
    """
    most = max((int(n) for n in needs), default=0)
    return most if most > 0 and rounds_done < max_rounds else 0


@dataclass
class Refill:
    """One process's batch places during the refill: which (round, group) fills each, and the counts.

    dropped: all-equal groups that left (or never entered) the batch; short: all-equal groups still in it at
    the end (trained masked); drawn: groups of drawn prompts; unused: drawn groups with signal beyond the open
    places. Every all-equal group is either dropped or short; every drawn group fills a place, is dropped or
    is unused.
    """

    slots: list[Pick]
    open: list[int] = field(default_factory=list)  # places still holding an all-equal group, in batch order
    round_sizes: list[int] = field(default_factory=list)  # groups generated in each round
    drawn: int = 0
    dropped: int = 0
    unused: int = 0

    @classmethod
    def start(cls, all_equal: Sequence[bool]) -> "Refill":
        """The batch as sampled (round 0) and its all-equal groups."""
        return cls(slots=[(0, g) for g in range(len(all_equal))], open=[g for g, eq in enumerate(all_equal) if eq],
                   round_sizes=[len(all_equal)])

    @property
    def rounds(self) -> int:
        """Generation rounds run, the first included."""
        return len(self.round_sizes)

    @property
    def everything(self) -> list[Pick]:
        """Every group generated, round by round, in generation order."""
        return [(r, g) for r, size in enumerate(self.round_sizes) for g in range(size)]

    @property
    def need(self) -> int:
        return len(self.open)

    @property
    def short(self) -> int:
        return len(self.open)

    def add_round(self, all_equal: Sequence[bool]) -> None:
        """The groups of the next round (drawn prompts, in draw order): each with signal takes the first open place."""
        round_index = self.rounds
        self.round_sizes.append(len(all_equal))
        self.drawn += len(all_equal)
        for g, equal in enumerate(all_equal):
            if equal:
                self.dropped += 1
            elif self.open:
                self.slots[self.open.pop(0)] = (round_index, g)
                self.dropped += 1  # the all-equal group that held the place
            else:
                self.unused += 1


def refill_order(num_rows: int, seed: int, key: object, rank: int, world: int) -> Iterator[int]:
    """Dataset indices process `rank` of `world` draws from, in order, at the rollout `key`: endless.

    Permutations of range(num_rows) seeded by (seed, key, pass), one after another, dealt round-robin: the
    processes' draws are distinct within a pass, and the same (seed, key, rank, world) give the same sequence.
    """
    if num_rows < 1 or not 0 <= rank < world:
        raise ValueError(f"refill_order: need num_rows >= 1 and 0 <= rank < world, got {num_rows}, {rank}, {world}")
    position, block, order = rank, -1, np.zeros(0, dtype=np.int64)
    while True:
        passes, offset = divmod(position, num_rows)
        if passes != block:
            block = passes
            order = np.random.default_rng(stable_seed(seed, "dynamic-sampling", key, passes)).permutation(num_rows)
        yield int(order[offset])
        position += world


def take_fresh(order: Iterator[int], count: int, taken: Callable[[int], bool], patience: int) -> list[int]:
    """The next `count` indices of `order`, skipping those `taken` says this process already holds; after
    `patience` skips in total (a dataset smaller than the batch) the rest are taken as they come."""
    chosen: list[int] = []
    skips = 0
    while len(chosen) < count:
        index = next(order)
        if skips < patience and (taken(index) or index in chosen):
            skips += 1
            continue
        chosen.append(index)
    return chosen


def add_metrics(values: MetricValues, refill: Refill) -> None:
    """dynamic_sampling/*: the group counts summed over processes; the rounds (the same on every process) as is."""
    for name in ("dropped", "short", "drawn", "unused"):
        values.add(f"dynamic_sampling/{name}_groups", [getattr(refill, name)], SUM)
    values.add("dynamic_sampling/rounds", [refill.rounds], MEAN)


# ---------------------------------------------------------------------------------------------- merging rounds
def merged_plan(plans: Sequence[GenerationPlan], picks: Sequence[Pick]) -> tuple[GenerationPlan, list[Pick]]:
    """The generation plan of the picked groups (in pick order) and, for each of its rows, the (round, row)
    it comes from: a picked group keeps every branch it had, with its rows in their order."""
    sizes = plans[0].sizes
    if any(p.sizes != sizes for p in plans):
        raise ValueError("merged_plan: every round must have the same branch sizes")
    has = [{b: set(p.groups[b]) for b in BRANCHES} for p in plans]
    plan = plan_generation(len(picks), sizes, {b: [g in has[r][b] for r, g in picks] for b in BRANCHES})
    rows_of: list[dict[tuple[str, int], list[int]]] = [{} for _ in plans]
    for r, p in enumerate(plans):
        for i, key in enumerate(p.rows):
            rows_of[r].setdefault(key, []).append(i)
    used: Counter = Counter()
    sources = []
    for branch, place in plan.rows:
        r, g = picks[place]
        sources.append((r, rows_of[r][(branch, g)][used[branch, place]]))
        used[branch, place] += 1
    return plan, sources


def take_rows(values: Sequence[Sequence], sources: Sequence[Pick]) -> list:
    """values[round][row] for each (round, row) of `sources`."""
    return [values[r][i] for r, i in sources]


def merged_kl(plans: Sequence[GenerationPlan], kls: Sequence[np.ndarray | None], plan: GenerationPlan,
              sources: Sequence[Pick]) -> np.ndarray | None:
    """The KL of each clean row of the merged `plan` (each round's `kl` holds one value per clean row)."""
    if any(kl is None for kl in kls):
        return None
    position = [{row: k for k, row in enumerate(p.indices(CLEAN))} for p in plans]
    clean_sources = [sources[i] for i in plan.indices(CLEAN)]
    return np.asarray([kls[r][position[r][i]] for r, i in clean_sources], dtype=np.float64)


def merged_scores(scores: Sequence[dict[str, BranchScores]], picks: Sequence[Pick]) -> dict[str, BranchScores]:
    """Each branch's scores of the picked groups (group g of the result is picks[g]), arrays [groups, size]."""
    merged: dict[str, BranchScores] = {}
    for branch in BRANCHES:
        parts = []  # (place, scores of its round, row in those scores)
        for place, (r, g) in enumerate(picks):
            s = scores[r].get(branch)
            if s is not None and g in s.groups:
                parts.append((place, s, s.groups.index(g)))
        if not parts:
            continue

        def stack(get) -> np.ndarray:
            return np.stack([get(s)[k] for _, s, k in parts])

        first = parts[0][1]
        merged[branch] = BranchScores(
            branch, [place for place, _, _ in parts],
            stack(lambda s: s.correctness), stack(lambda s: s.lengths),
            {name: stack(lambda s, name=name: s.components[name]) for name in first.components},
            stack(lambda s: s.total) if first.total is not None else None,
        )
    return merged


__all__ = [
    "Pick", "Refill", "all_equal_groups", "draw_count", "merged_kl", "merged_plan", "merged_scores", "refill_order",
    "take_fresh", "take_rows",
]
