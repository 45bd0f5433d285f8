"""DAPO dynamic sampling, the pure rules (rova.training.dynamic_sampling): which groups are dropped, how many prompts
each process draws, filling the places in order, the counts, the side draws, and merging rounds into one batch."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rova.config.branches import BRANCHES, CLEAN, CORRUPTED, SHUFFLED
from rova.training.dynamic_sampling import (Refill, add_metrics, all_equal_groups, draw_count, merged_kl, merged_plan,
                                            merged_scores, refill_order, take_fresh, take_rows)
from rova.training.rollout_metrics import MEAN, SUM, MetricValues
from rova.training.scoring import BranchScores, plan_generation

# ------------------------------------------------------------------------------------------ all-equal groups
rewards = st.floats(-10, 10, allow_nan=False, allow_infinity=False)


@given(st.lists(rewards, min_size=1, max_size=6), st.integers(2, 8), st.floats(0, 1e-12))
def test_a_group_of_one_reward_is_all_equal_up_to_float_rounding(values, size, noise):
    base = np.repeat(np.asarray(values)[:, None], size, axis=1)
    wobble = base + noise * np.sin(np.arange(base.size)).reshape(base.shape)  # float noise, not a signal
    assert all_equal_groups(base).all() and all_equal_groups(wobble).all()


@given(st.lists(rewards, min_size=1, max_size=6), st.integers(2, 8), st.floats(1e-6, 5), st.data())
def test_a_group_with_one_different_reward_has_signal(values, size, gap, data):
    totals = np.repeat(np.asarray(values)[:, None], size, axis=1)
    g, k = data.draw(st.integers(0, len(values) - 1)), data.draw(st.integers(0, size - 1))
    totals[g, k] += gap
    assert list(all_equal_groups(totals)) == [i != g for i in range(len(values))]


def test_the_sums_float_arithmetic_makes_are_equal():
    assert all_equal_groups(np.array([[0.1 + 0.2, 0.3, 0.3], [1.0, 1.0, 0.0]])).tolist() == [True, False]
    assert all_equal_groups(np.zeros((0, 4))).tolist() == []


# ------------------------------------------------------------------------------------------ draws per round
@given(st.lists(st.integers(0, 16), min_size=1, max_size=8), st.integers(1, 12), st.integers(1, 12))
def test_every_process_agrees_on_the_draw_and_the_cap_stops_it(needs, rounds_done, cap):
    # Each process computes it from the same gathered list, in whatever order its own need sits.
    counts = {draw_count(needs[r:] + needs[:r], rounds_done, cap) for r in range(len(needs))}
    assert len(counts) == 1
    count = counts.pop()
    assert count == (max(needs) if rounds_done < cap and max(needs) > 0 else 0)


def simulate(initial: list[list[bool]], cap: int, data) -> tuple[list[Refill], list[list[list[bool]]]]:
    """The trainer's loop over P processes: gather the needs, everyone draws the agreed count, place the results."""
    processes = [Refill.start(flags) for flags in initial]
    outcomes = [[list(flags)] for flags in initial]  # per process, per round: all-equal flag of each group
    while (count := draw_count([p.need for p in processes], processes[0].rounds, cap)) > 0:
        for p, refill in enumerate(processes):
            flags = data.draw(st.lists(st.booleans(), min_size=count, max_size=count))
            refill.add_round(flags)
            outcomes[p].append(flags)
    return processes, outcomes


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 4), st.integers(1, 6), st.integers(1, 6), st.data())
def test_the_refill_keeps_the_batch_size_order_cap_and_counts(num_processes, groups, cap, data):
    initial = [data.draw(st.lists(st.booleans(), min_size=groups, max_size=groups)) for _ in range(num_processes)]
    processes, outcomes = simulate(initial, cap, data)
    assert len({p.rounds for p in processes}) == 1  # every process generated the same rounds
    for refill, rounds in zip(processes, outcomes):
        equal = {(r, g) for r, flags in enumerate(rounds) for g, flag in enumerate(flags) if flag}
        assert refill.rounds == len(rounds) <= cap  # never beyond the cap
        assert len(refill.slots) == groups and len(set(refill.slots)) == groups  # the batch size, no group twice
        assert refill.everything == [(r, g) for r, flags in enumerate(rounds) for g in range(len(flags))]
        assert set(refill.slots) <= set(refill.everything)
        # The counts: every all-equal group is dropped or short; dropped = the all-equal groups not trained.
        assert refill.short == sum(pick in equal for pick in refill.slots) == refill.need
        assert refill.dropped == len(equal - set(refill.slots)) == len(equal) - refill.short
        assert refill.drawn == sum(len(flags) for flags in rounds[1:])
        filled = sum(pick[0] > 0 for pick in refill.slots)
        assert refill.drawn == filled + refill.unused + len({pick for pick in equal if pick[0] > 0})
        # Order: the sampled groups with signal keep their places; the refilled places, in batch order, get the
        # drawn groups in draw order; a short batch means the cap was reached.
        for g, flag in enumerate(rounds[0]):
            if not flag:
                assert refill.slots[g] == (0, g)
        refilled = [pick for pick in refill.slots if pick[0] > 0]
        assert refilled == sorted(refilled) and all(pick not in equal for pick in refilled)
        if refill.short:
            assert refill.rounds == cap
    if all(p.short == 0 for p in processes) and processes[0].rounds > 1:
        # It stopped because no process needed more, not at the cap (or both).
        assert any(p.need == 0 for p in processes)


def test_a_process_that_needs_fewer_draws_the_agreed_count_and_leaves_the_rest_unused():
    full, short = Refill.start([False, False]), Refill.start([True, True])
    assert draw_count([full.need, short.need], 1, 5) == 2
    full.add_round([False, True])
    short.add_round([False, True])
    assert (full.unused, full.dropped, full.slots) == (1, 1, [(0, 0), (0, 1)])
    assert (short.unused, short.dropped, short.slots, short.open) == (0, 2, [(1, 0), (0, 1)], [1])
    assert draw_count([full.need, short.need], 2, 5) == 1  # the next round: every process draws 1


def test_the_metrics_sum_the_counts_and_keep_the_rounds():
    refill = Refill.start([True, False, True])
    refill.add_round([False, True])
    values = MetricValues()
    add_metrics(values, refill)
    got = {name: (array.tolist(), kind) for name, (array, kind) in values.values.items()}
    assert got == {
        "dynamic_sampling/dropped_groups": ([2.0], SUM), "dynamic_sampling/short_groups": ([1.0], SUM),
        "dynamic_sampling/drawn_groups": ([2.0], SUM), "dynamic_sampling/unused_groups": ([0.0], SUM),
        "dynamic_sampling/rounds": ([2.0], MEAN),
    }


# ------------------------------------------------------------------------------------------ side draws
@given(st.integers(1, 40), st.integers(0, 2**32 - 1), st.integers(1, 5), st.integers(0, 3))
def test_the_side_draws_are_replayable_distinct_across_processes_and_in_range(rows, seed, world, step):
    first_pass = []
    for rank in range(world):
        a = list(itertools.islice(refill_order(rows, seed, (step, 0), rank, world), 2 * rows + 3))
        b = list(itertools.islice(refill_order(rows, seed, (step, 0), rank, world), 2 * rows + 3))
        assert a == b and all(0 <= i < rows for i in a)
        first_pass += a[: len(range(rank, rows, world))]
    # Within one pass over the data, no two processes draw the same row, and every row is dealt.
    assert sorted(first_pass) == list(range(rows))


def test_the_side_draws_differ_between_rollouts_and_seeds():
    def draws(seed, key):
        return list(itertools.islice(refill_order(1000, seed, key, 0, 1), 20))

    assert draws(1, (3, 0)) != draws(1, (3, 1)) != draws(2, (3, 1))
    with pytest.raises(ValueError):
        next(refill_order(0, 1, (0, 0), 0, 1))


@given(st.integers(1, 30), st.integers(1, 10), st.sets(st.integers(0, 29)), st.integers(0, 2**16))
def test_fresh_draws_skip_what_the_process_holds_while_the_data_allows(rows, count, held, seed):
    held = {i for i in held if i < rows}
    chosen = take_fresh(refill_order(rows, seed, (0, 0), 0, 1), count, held.__contains__, patience=rows)
    assert len(chosen) == count and all(0 <= i < rows for i in chosen)
    if count + len(held) <= rows:  # room enough: nothing held and no repeat
        assert not set(chosen) & held and len(set(chosen)) == count


# ------------------------------------------------------------------------------------------ merging rounds
def make_round(r: int, groups: int, sizes: dict[str, int], shuffled: list[bool]):
    """A round whose every value names its origin: row values are (round, row), totals encode (round, group, k)."""
    plan = plan_generation(groups, sizes, {CLEAN: [True] * groups, SHUFFLED: shuffled, CORRUPTED: [True] * groups})
    scores = {}
    for branch in BRANCHES:
        have = plan.groups[branch]
        if not have:
            continue
        code = np.array([[100 * r + 10 * g + k for k in range(sizes[branch])] for g in have], dtype=np.float64)
        scores[branch] = BranchScores(branch, list(have), code, code + 0.5, {"accuracy": code + 0.25},
                                      None if branch == SHUFFLED else code + 0.75)
    kl = np.array([1000.0 * r + i for i in plan.indices(CLEAN)])
    return plan, scores, kl, [(r, i) for i in range(len(plan.rows))]


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 4), st.integers(0, 3), st.integers(1, 3), st.data())
def test_merging_keeps_each_prompts_branches_together_in_pick_order(g_clean, g_shuffled, g_corrupted, data):
    sizes = {CLEAN: g_clean, SHUFFLED: g_shuffled, CORRUPTED: g_corrupted}
    counts = data.draw(st.lists(st.integers(1, 4), min_size=1, max_size=4))
    rounds = [make_round(r, n, sizes, data.draw(st.lists(st.booleans(), min_size=n, max_size=n)))
              for r, n in enumerate(counts)]
    everything = [(r, g) for r, n in enumerate(counts) for g in range(n)]
    picks = data.draw(st.permutations(everything))[: data.draw(st.integers(1, len(everything)))]
    plans = [p for p, _, _, _ in rounds]
    plan, sources = merged_plan(plans, picks)
    # The layout of a fresh plan of the picked groups: clean group g at rows [g*G, (g+1)*G), then the other branches.
    assert plan.rows == plan_generation(len(picks), sizes, {b: [g in plans[r].groups[b] for r, g in picks]
                                                            for b in BRANCHES}).rows
    assert plan.indices(CLEAN) == list(range(len(picks) * g_clean))
    rows = take_rows([values for _, _, _, values in rounds], sources)
    assert rows == sources
    for (branch, place), (r, i) in zip(plan.rows, sources):
        assert plans[r].rows[i] == (branch, picks[place][1])  # the row comes from the picked group, same branch
    assert len(set(sources)) == len(sources)
    scores = merged_scores([s for _, s, _, _ in rounds], picks)
    for branch, s in scores.items():
        assert s.groups == plan.groups[branch]
        for k, place in enumerate(s.groups):
            r, g = picks[place]
            expected = [100 * r + 10 * g + j for j in range(sizes[branch])]
            np.testing.assert_array_equal(s.correctness[k], expected)
            np.testing.assert_array_equal(s.components["accuracy"][k], np.add(expected, 0.25))
            if branch != SHUFFLED:
                np.testing.assert_array_equal(s.total[k], np.add(expected, 0.75))
        if branch == SHUFFLED:
            assert s.total is None
    kl = merged_kl(plans, [k for _, _, k, _ in rounds], plan, sources)
    assert kl.tolist() == [1000.0 * r + i for r, i in (sources[j] for j in plan.indices(CLEAN))]
    assert merged_kl(plans, [None] * len(rounds), plan, sources) is None


def test_rounds_of_different_branch_sizes_are_refused():
    a = make_round(0, 1, {CLEAN: 2, SHUFFLED: 0, CORRUPTED: 0}, [False])[0]
    b = make_round(1, 1, {CLEAN: 3, SHUFFLED: 0, CORRUPTED: 0}, [False])[0]
    with pytest.raises(ValueError):
        merged_plan([a, b], [(0, 0), (1, 0)])
