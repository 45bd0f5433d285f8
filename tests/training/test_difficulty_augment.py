"""DeepVideo-R1's difficulty-aware augmentation, the pure rules (rova.training.difficulty_augment): which groups are
re-rolled, the hint and its truncation, the agreed count and its padding, the batch places and the counts, and the
perturbed clip. The trainer: tests/training/test_difficulty_augment_trainer.py."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rova.config.corruption import CorruptionConfig
from rova.training.difficulty_augment import (EASY, HARD, Reroll, Selection, add_metrics, agreed_rerolls, difficulty,
                                              hint_for, padding_groups, perturbed_clip, select_rerolls, truncate_hint,
                                              with_hint)
from rova.training.rollout_metrics import SUM, MetricValues

# ------------------------------------------------------------------------------------------ which groups
accuracy = st.sampled_from([0.0, 1.0, 0.5, 0.25, 1e-12, 1.0 - 1e-12])
groups = st.integers(1, 6).flatmap(lambda n: st.integers(1, 8).flatmap(
    lambda g: st.lists(st.lists(accuracy, min_size=g, max_size=g), min_size=n, max_size=n)))


@given(groups)
def test_easy_is_every_completion_right_and_hard_every_one_wrong(rows):
    labels = difficulty(np.array(rows))
    for row, label in zip(rows, labels):
        right, wrong = all(a >= 1 - 1e-9 for a in row), all(a <= 1e-9 for a in row)
        assert label == (EASY if right else HARD if wrong else None)


def test_difficulty_edge_values():
    assert difficulty(np.array([[1.0, 1.0], [0.0, 0.0], [1.0, 0.0], [0.7, 0.7], [np.nan, 1.0]])) == [
        EASY, HARD, None, None, None]  # a group of one reward other than 0 / 1 (IoU) is neither; NaN is neither
    assert difficulty(np.zeros((0, 4))) == []
    with pytest.raises(ValueError):
        difficulty(np.zeros(3))


# Small alphabets: hypothesis builds its full unicode tables on first use (seconds).
words = st.text("ab \n", max_size=30)
rows_with_hints = st.lists(st.fixed_dictionaries({}, optional={
    "hint": st.one_of(st.none(), st.just(""), st.just("  "), words),
    "process": st.one_of(st.none(), st.just("<think></think>"), words.map(lambda t: f"<think>{t}</think>")),
}), min_size=6, max_size=6)


@given(groups, st.booleans(), st.booleans(), st.integers(1, 40), st.data())
def test_selection_re_rolls_each_switched_on_group_once_and_counts_the_rest(rows, easy, hard, chars, data):
    rows = rows[:6]
    records = data.draw(rows_with_hints)[: len(rows)]
    selection = select_rerolls(np.array(rows), records, augment_easy=easy, augment_hard=hard, hint_max_chars=chars)
    labels = difficulty(np.array(rows))
    assert selection.labels == labels
    rerolled = [r.group for r in selection.rerolls]
    assert rerolled == sorted(set(rerolled))  # at most once each, in batch order
    for g, label in enumerate(labels):
        hint = hint_for(records[g], chars)
        wanted = (label == EASY and easy) or (label == HARD and hard and hint is not None)
        assert (g in rerolled) == wanted
        assert (g in selection.no_hint) == (label == HARD and hard and hint is None)
    for reroll in selection.rerolls:
        assert reroll.kind == labels[reroll.group]
        assert (reroll.hint is not None) == (reroll.kind == HARD)
    counts = selection.counts()
    assert counts["easy_rerolled"] == (labels.count(EASY) if easy else 0)
    assert counts["hard_rerolled"] + counts["hard_no_hint"] == (labels.count(HARD) if hard else 0)
    untouched = len(labels) - counts["easy_rerolled"] - counts["hard_rerolled"]
    assert untouched == sum(1 for g in range(len(labels)) if g not in rerolled)


# ------------------------------------------------------------------------------------------ hints
@given(st.text("ab \t\n.é", max_size=80), st.integers(1, 60))
def test_a_truncated_hint_is_a_prefix_that_fits(text, chars):
    cut = truncate_hint(text, chars)
    assert len(cut) <= chars and text.startswith(cut)
    if len(text) <= chars:
        assert cut == text


@given(st.lists(st.text("abcdefgh", min_size=1, max_size=8), min_size=1, max_size=12), st.integers(1, 40))
def test_a_truncated_hint_ends_at_a_word_boundary_when_it_can(words, chars):
    text = " ".join(words)
    cut = truncate_hint(text, chars)
    if len(text) > chars and len(words[0]) <= chars:
        assert cut.split(" ") == words[: len(cut.split(" "))]  # whole words only
        assert len(" ".join(words[: len(cut.split(" ")) + 1])) > chars  # as many as fit


def test_hint_by_hand():
    assert truncate_hint("look at the red ball", 12) == "look at the"
    assert truncate_hint("look at the red ball", 11) == "look at the"
    assert truncate_hint("abcdefghij", 4) == "abcd"  # one word longer than the limit is cut inside
    assert hint_for({"hint": "count the cars", "process": "<think>x</think>"}, 100) == "count the cars"
    assert hint_for({"hint": " ", "process": "<think>  The ball moves left. </think>"}, 100) == "The ball moves left."
    assert hint_for({"hint": None, "process": "<think></think>"}, 100) is None
    assert hint_for({"problem": "q"}, 100) is None  # rows built without hints (memory.augment_hard off)
    with pytest.raises(ValueError):
        truncate_hint("x", 0)


def test_the_hint_goes_after_the_last_user_text_and_the_messages_are_not_changed():
    messages = [{"role": "system", "content": [{"type": "text", "text": "S"}]},
                {"role": "user", "content": [{"type": "video", "text": None}, {"type": "text", "text": "Q?"}]}]
    hinted = with_hint(messages, "h1", "\nHint: {hint}")
    assert hinted[1]["content"][1]["text"] == "Q?\nHint: h1" and hinted[0] == messages[0]
    assert messages[1]["content"][1]["text"] == "Q?"
    assert with_hint([{"role": "user", "content": "Q"}], "h", " ({hint})") == [{"role": "user", "content": "Q (h)"}]
    with pytest.raises(ValueError):
        with_hint([{"role": "user", "content": [{"type": "video"}]}], "h", "{hint}")


# ------------------------------------------------------------------------------------------ rounds and places
@given(st.lists(st.integers(0, 6), min_size=1, max_size=8), st.integers(1, 6))
def test_every_process_generates_the_agreed_count_padding_with_its_own_groups(needs, num_groups):
    counts = {agreed_rerolls(needs[r:] + needs[:r]) for r in range(len(needs))}
    assert counts == {max(needs)}
    for own in needs:
        padding = padding_groups(own, max(needs), num_groups)
        assert own + len(padding) == max(needs) and all(0 <= g < num_groups for g in padding)
    with pytest.raises(ValueError):
        padding_groups(max(needs) + 1, max(needs), num_groups)


@given(st.integers(1, 8), st.data())
def test_a_re_roll_takes_its_original_place_and_nothing_else_moves(num_groups, data):
    chosen = sorted(data.draw(st.sets(st.integers(0, num_groups - 1))))
    selection = Selection([None] * num_groups, [Reroll(g, EASY) for g in chosen])
    slots = selection.slots(1)
    assert len(slots) == num_groups
    assert slots == [(1, chosen.index(g)) if g in chosen else (0, g) for g in range(num_groups)]


def test_counts_and_metrics_are_exact():
    selection = Selection([EASY, HARD, HARD, None, EASY], [Reroll(0, EASY), Reroll(1, HARD, "h"), Reroll(4, EASY)],
                          no_hint=[2], padding=1, gained=[True, True, False])
    assert selection.counts() == {"easy_rerolled": 2, "hard_rerolled": 1, "hard_no_hint": 1, "easy_gained_signal": 1,
                                  "hard_gained_signal": 1, "padding_groups": 1}
    values = MetricValues()
    add_metrics(values, selection)
    assert {k: (v.tolist(), kind) for k, (v, kind) in values.values.items()} == {
        f"augment/{k}": ([float(n)], SUM) for k, n in selection.counts().items()}


# ------------------------------------------------------------------------------------------ the perturbed clip
def clip() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, size=(4, 16, 16, 3), dtype=np.uint8)


def test_the_perturbed_clip_is_always_corrupted_seeded_and_replayable():
    from rova.corruption import replay

    frames = clip()
    mix = CorruptionConfig(p_photometric=0.05, p_weather=0.05)  # 90 % clean remainder: never drawn here
    records = []
    for seed in range(20):
        out, record = perturbed_clip(frames, mix, seed)
        assert record["family"] in ("photometric", "weather") and record["seed"] == seed
        assert np.array_equal(replay(frames, record), out)
        again, same = perturbed_clip(frames, mix, seed)
        assert same == record and np.array_equal(again, out)
        records.append(record["variant"])
    assert len(set(records)) > 1  # the mix is drawn, not one variant
    with pytest.raises(ValueError, match="never corrupts"):
        perturbed_clip(frames, CorruptionConfig(), 0)

