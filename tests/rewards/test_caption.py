"""Caption recall, the rule (rova.rewards.caption): hand-computed cases, the ground-truth format, and properties."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rova.rewards import RewardDataError, accuracy_score, ground_truth
from rova.rewards.caption import caption_recall, caption_tokens, event_recalls, parse_events

SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
EVENTS = ["a man opens the fridge", "he pours milk into a glass"]
SOLUTION = "<answer>a man opens the fridge\nhe pours milk into a glass</answer>"


def test_tokens_are_casefolded_runs_of_letters_and_digits():
    assert caption_tokens("The Fridge's door, 2x_faster! Straße") == ["the", "fridge", "s", "door", "2x", "faster",
                                                                        "strasse"]
    assert caption_tokens("...!? -- ") == [] and caption_tokens(None) == []


def test_hand_computed_recalls():
    # Event 2's tokens [he, pours, milk, into, a, glass] share only "a" in order with the caption: 1/6.
    assert event_recalls("A man opens the fridge.", EVENTS) == [1.0, 1 / 6]
    assert caption_recall("A man opens the fridge.", EVENTS) == 0.5
    # [a, dog, runs, after, the, ball] vs [the, dog, runs, to, the, red, ball]: LCS "dog runs the ball" = 4 of 6.
    assert event_recalls("the dog runs to the red ball", ["a dog runs after the ball"]) == [pytest.approx(4 / 6)]
    # Order inside an event counts (a subsequence): "cat chases dog" in "dog chases cat" keeps 1 of 3 tokens.
    assert event_recalls("dog chases cat", ["cat chases dog"]) == [pytest.approx(1 / 3)]
    assert caption_recall("dog chases cat", ["cat chases dog"]) == 0.0


def test_the_threshold_is_inclusive():
    # 2 of the event's 4 tokens: covered at 0.5, not above.
    assert caption_recall("the cat", ["the black cat sleeps"], threshold=0.5) == 1.0
    assert caption_recall("the cat", ["the black cat sleeps"], threshold=0.51) == 0.0
    assert caption_recall("the cat", ["the black cat sleeps", "a dog barks"], threshold=0.25) == 0.5


def test_events_are_the_lines_of_the_answer_without_list_markers():
    answer = "1. a man opens the fridge\n\n  - he pours milk \n2) 3 cats run\n* (4) a dog\n3.5 seconds later he drinks"
    assert parse_events(answer) == ["a man opens the fridge", "he pours milk", "3 cats run", "(4) a dog",
                                    "3.5 seconds later he drinks"]
    assert parse_events("") == [] and parse_events(None) == []


def test_caption_accuracy_in_training_and_eval():
    caption = "<think>t</think><answer>A man opens the fridge, then he pours milk into a glass.</answer>"
    for mode in ("train", "eval"):
        assert accuracy_score(caption, SOLUTION, "caption", mode=mode) == 1.0
        assert accuracy_score("<answer>A man opens the fridge.</answer>", SOLUTION, "Caption", mode=mode) == 0.5
    assert accuracy_score("A man opens the fridge.", SOLUTION, "caption") == 0.0  # no <answer>: 0
    assert accuracy_score("A man opens the fridge.", SOLUTION, "caption", fallback_whole_output=True) == 0.5
    assert accuracy_score("<answer>A man opens the fridge.</answer>", SOLUTION, "caption", caption_threshold=0.1) == 1.0


@pytest.mark.parametrize("solution,problem", [
    ("<answer>\n \n</answer>", "empty answer"),
    ("<answer>\n- \n</answer>", "event '-' has no letter or digit"),
    ("<answer>a man runs\n!!!</answer>", "no letter or digit"),
    ("a man runs", "no <answer>"),
])
def test_unusable_ground_truth_is_a_data_error(solution, problem):
    with pytest.raises(RewardDataError, match=problem):
        ground_truth(solution, "caption")


def test_a_good_ground_truth_passes_the_load_check():
    assert ground_truth(SOLUTION, "caption") == SOLUTION[len("<answer>"):-len("</answer>")]


# ------------------------------------------------------------------------------------------------- properties

WORDS = ["a", "man", "the", "cat", "runs", "opens", "door", "milk", "red", "ball", "2", "x"]
event = st.lists(st.sampled_from(WORDS), min_size=1, max_size=8).map(" ".join)
events = st.lists(event, min_size=1, max_size=6)
threshold = st.floats(0.01, 1.0)
caption = st.one_of(st.lists(st.sampled_from(WORDS + [",", ".", "\n"]), max_size=40).map(" ".join), st.text(max_size=80))


@SETTINGS
@given(caption, events, threshold)
def test_recall_is_a_share_of_the_events(text, evs, t):
    recall = caption_recall(text, evs, t)
    assert 0.0 <= recall <= 1.0 and math.isfinite(recall)
    assert math.isclose(recall * len(evs), round(recall * len(evs)))  # covered / events


@SETTINGS
@given(events, threshold, st.sampled_from([" ", "\n", ". ", "; then "]))
def test_the_events_themselves_cover_every_event(evs, t, joiner):
    assert caption_recall(joiner.join(evs), evs, t) == 1.0
    assert accuracy_score(f"<answer>{joiner.join(evs)}</answer>", "<answer>" + "\n".join(evs) + "</answer>",
                          "caption", caption_threshold=t) == 1.0


@SETTINGS
@given(events, threshold, st.sampled_from(["", "   ", "...", "\n,;!"]))
def test_a_caption_without_tokens_covers_nothing(evs, t, empty):
    assert caption_recall(empty, evs, t) == 0.0


@SETTINGS
@given(caption, events, threshold, st.randoms(use_true_random=False))
def test_the_order_of_the_events_does_not_matter(text, evs, t, rng):
    shuffled = list(evs)
    rng.shuffle(shuffled)
    assert caption_recall(text, shuffled, t) == caption_recall(text, evs, t)


@SETTINGS
@given(caption, caption, events, threshold)
def test_more_caption_never_covers_less(text, more, evs, t):
    assert caption_recall(text + " " + more, evs, t) >= caption_recall(text, evs, t)
    assert caption_recall(more + " " + text, evs, t) >= caption_recall(text, evs, t)


@SETTINGS
@given(caption, events, threshold, threshold)
def test_a_higher_threshold_never_covers_more(text, evs, t1, t2):
    low, high = sorted((t1, t2))
    assert caption_recall(text, evs, high) <= caption_recall(text, evs, low)
