"""DeepVideo-R1's difficulty-aware augmentation (arXiv 2506.07464), the pure part: which groups are re-rolled, how.

A prompt group whose G clean completions are all right (too easy) or all wrong (too hard) has one reward for all
of them and no learning signal (the "vanishing advantage"). DeepVideo-R1 moves such a sample towards a solvable
difficulty: an easy one is made harder, a hard one easier, and the augmented sample is trained in its place.
rova's options (`memory.*`, rova/config/memory.py; docs/memory.md):

- `memory.augment_easy`: a group whose every clean completion has accuracy 1 is re-rolled on a corrupted clip:
  a corruption of the run's corruption mix, drawn given that it corrupts (the mix's clean remainder is left out,
  so the re-roll never sees the clip it already solved), seeded by (stage.seed, step, sample id)
  (`perturbed_clip`; `ClipSource.perturbed`). Replayable as the memory's corrupted views are: the record holds
  the variant, severity, seed and every drawn parameter.
- `memory.augment_hard`: a group whose every clean completion has accuracy 0 is re-rolled with a hint appended to
  its question (`memory.hint_template`): the record's `hint` field if it holds text, else its `process` rationale
  (the <think> tags dropped), cut to `memory.hint_max_chars` characters at a word boundary (`hint_for`). A record
  with neither is left as it was and counted (`hard_no_hint`).

Rules (the trainer, rova.training.trainer, applies them; tests/training/test_difficulty_augment*.py):
- Difficulty is read from the clean branch's ACCURACY, not the total reward. The total mixes format, length,
  temporal and KL-consistency terms: with reward=rova the KL reward is continuous, so a group that answered right
  every time almost never has G equal totals, and a rule on totals would never fire; "too easy" and "too hard"
  are statements about solving the task. (Continuous accuracies, e.g. IoU, qualify only at exactly 1 or 0.)
- Only the groups of the batch as sampled qualify, each at most once per rollout: one re-roll round, never a
  re-roll of a re-roll, never a group drawn by dynamic sampling.
- The re-roll is the SAME prompt (the same row, its other views unchanged: the shuffled and corrupted branches
  keep this step's shuffled and corrupted clips, re-generated with it) with the clean clip swapped for the
  perturbed one (easy) or the hint in its text on every branch (hard). Its group REPLACES the original in the
  batch, in the original's place, as DeepVideo-R1 trains the augmented sample, whether or not it gained signal
  (counted: `*_gained_signal`, its clean totals not all equal). The original stays in rollouts.jsonl
  (`in_batch: false`); the difficulty memory sees the originals only (a re-roll's view or prompt is not one the
  memory can replay).
- Generation is collective (ZeRO-3 gathers, the KL passes, vLLM): every process runs the re-roll round when any
  process has a group to re-roll, with the same number of groups, the most any process re-rolls (one gather). A
  process with fewer pads with plain re-generations of its own groups (`padding_groups`), discarded and counted.
- With dynamic sampling (objective.dynamic_sampling) augmentation comes first: the refill then starts from the
  batch with its re-rolls in place and replaces what is still all-equal (a re-roll without signal too) by fresh
  prompts, which are never augmented. The re-roll round does not count in objective.max_sampling_rounds.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rova.training.rollout_metrics import SUM, MetricValues

EASY, HARD = "easy", "hard"
Pick = tuple[int, int]  # (round, prompt group of that round), as in rova.training.dynamic_sampling
_THINK_TAGS = re.compile(r"</?think>")
# An accuracy within this of 1 (or 0) is right (wrong): accuracy_score returns 1.0 / 0.0 for a binary answer.
_TOLERANCE = 1e-9


def difficulty(correctness: np.ndarray) -> list[str | None]:
    """Per group of `correctness` [groups, G]: EASY when every completion's accuracy is 1, HARD when every one is 0,
    else None (a NaN accuracy is neither)."""
    correctness = np.asarray(correctness, dtype=np.float64)
    if correctness.ndim != 2 or correctness.shape[1] < 1:
        raise ValueError(f"difficulty: correctness must be [groups, G >= 1], got shape {correctness.shape}")
    right = np.all(correctness >= 1.0 - _TOLERANCE, axis=1)
    wrong = np.all(np.abs(correctness) <= _TOLERANCE, axis=1)
    return [EASY if r else HARD if w else None for r, w in zip(right.tolist(), wrong.tolist())]


def truncate_hint(text: str, max_chars: int) -> str:
    """`text` if it fits in `max_chars` characters, else its longest prefix that fits and ends at a word boundary
    (a single word longer than the limit is cut inside), trailing spaces dropped."""
    if max_chars < 1:
        raise ValueError(f"max_chars must be >= 1, got {max_chars}")
    if len(text) <= max_chars:
        return text
    cut = text[:max_chars]
    if not text[max_chars].isspace():
        boundary = max((i for i, ch in enumerate(cut) if ch.isspace()), default=-1)
        if boundary > 0:
            cut = cut[:boundary]
    return cut.rstrip()


def hint_for(row: dict[str, Any], max_chars: int) -> str | None:
    """The hint of a training row: its `hint` field if that holds text, else its `process` rationale without the
    <think> tags, stripped and cut to `max_chars` (truncate_hint); None when neither holds text."""
    for key in ("hint", "process"):
        value = row.get(key)
        if isinstance(value, str):
            text = _THINK_TAGS.sub("", value).strip()
            if text:
                return truncate_hint(text, max_chars)
    return None


def with_hint(messages: list[dict[str, Any]], hint: str, template: str) -> list[dict[str, Any]]:
    """A copy of the chat `messages` with `template` ({hint} replaced by `hint`) appended to the text of the last
    user turn (after the question and its answer-format instruction)."""
    out = copy.deepcopy(messages)
    for message in reversed(out):
        if message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            message["content"] = content + template.replace("{hint}", hint)
            return out
        for block in reversed(content or []):
            if block.get("type") == "text" and isinstance(block.get("text"), str):
                block["text"] += template.replace("{hint}", hint)
                return out
    raise ValueError("with_hint: the prompt has no user text to append the hint to")


@dataclass(frozen=True)
class Reroll:
    """One group to re-roll: its place in the batch, the kind, and (HARD) the hint."""

    group: int
    kind: str
    hint: str | None = None


@dataclass
class Selection:
    """The groups of one process's sampled batch and what augmentation does with them.

    labels: each group's difficulty (EASY, HARD or None), whether or not its kind is switched on;
    rerolls: the groups to re-roll, in batch order, each at most once; no_hint: the HARD groups left as they were
    (augment_hard on, no hint); padding: plain re-generations of this process's groups that only keep the
    processes' generation batches equal; gained: per re-roll, whether its clean totals are not all equal.
    """

    labels: list[str | None]
    rerolls: list[Reroll] = field(default_factory=list)
    no_hint: list[int] = field(default_factory=list)
    padding: int = 0
    gained: list[bool] = field(default_factory=list)

    def slots(self, reroll_round: int) -> list[Pick]:
        """The batch after the re-roll round `reroll_round`: each place holds its original (0, g), or its re-roll."""
        slots: list[Pick] = [(0, g) for g in range(len(self.labels))]
        for k, reroll in enumerate(self.rerolls):
            slots[reroll.group] = (reroll_round, k)
        return slots

    def counts(self) -> dict[str, int]:
        """augment/* counts of this process (the trainer sums them over processes)."""
        kinds = [r.kind for r in self.rerolls]
        gained = dict.fromkeys((EASY, HARD), 0)
        for reroll, signal in zip(self.rerolls, self.gained):
            gained[reroll.kind] += int(bool(signal))
        return {
            "easy_rerolled": kinds.count(EASY),
            "hard_rerolled": kinds.count(HARD),
            "hard_no_hint": len(self.no_hint),
            "easy_gained_signal": gained[EASY],
            "hard_gained_signal": gained[HARD],
            "padding_groups": self.padding,
        }


def select_rerolls(correctness: np.ndarray, rows: Sequence[dict[str, Any]], *, augment_easy: bool,
                   augment_hard: bool, hint_max_chars: int) -> Selection:
    """Which groups of a sampled batch are re-rolled: `correctness` [groups, G] is the clean branch's accuracy,
    `rows[g]` group g's training row (its `hint` / `process`)."""
    labels = difficulty(correctness)
    if len(labels) != len(rows):
        raise ValueError(f"select_rerolls: {len(labels)} groups of accuracies but {len(rows)} rows")
    selection = Selection(labels)
    for g, (label, row) in enumerate(zip(labels, rows)):
        if label == EASY and augment_easy:
            selection.rerolls.append(Reroll(g, EASY))
        elif label == HARD and augment_hard:
            hint = hint_for(row, hint_max_chars)
            if hint is None:
                selection.no_hint.append(g)
            else:
                selection.rerolls.append(Reroll(g, HARD, hint))
    return selection


def agreed_rerolls(needs: Sequence[int]) -> int:
    """Groups every process generates in the re-roll round, from every process's own re-rolls (gathered, so each
    process computes the same number): the most any process re-rolls; 0 = no round anywhere."""
    return max((int(n) for n in needs), default=0)


def padding_groups(own: int, agreed: int, num_groups: int) -> list[int]:
    """The groups a process re-generates, plainly, to fill the agreed re-roll count: `agreed - own` of its
    `num_groups` groups, cycling from the first."""
    if own > agreed or num_groups < 1:
        raise ValueError(f"padding_groups: need own <= agreed and num_groups >= 1, got {own}, {agreed}, {num_groups}")
    return [i % num_groups for i in range(agreed - own)]


def perturbed_clip(frames: np.ndarray, cfg, seed: int) -> tuple[np.ndarray, dict[str, Any]]:
    """A corruption of the mix `cfg` (CorruptionConfig) applied to `frames`, drawn GIVEN that it corrupts: the
    engine's draw (rova.corruption.draw_corruption, stream [seed, 1] as apply_random_corruption) repeated until it
    picks a family, i.e. the mix renormalised over its families. Returns (frames, the replayable record's dict)."""
    from rova.config.corruption import FAMILIES
    from rova.corruption import corrupt, draw_corruption

    if sum(getattr(cfg, f"p_{family}") for family in FAMILIES) <= 0.0:
        raise ValueError("perturbed_clip: the corruption mix never corrupts (every corruption.p_* is 0)")
    rng = np.random.default_rng([seed, 1])
    spec = None
    while spec is None:  # ends: some family has p > 0
        spec = draw_corruption(cfg, rng)
    out, record = corrupt(frames, spec, seed)
    return out, record.to_dict()


def add_metrics(values: MetricValues, selection: Selection) -> None:
    """augment/*: the group counts, summed over processes."""
    for name, count in selection.counts().items():
        values.add(f"augment/{name}", [count], SUM)


__all__ = [
    "EASY", "HARD", "Reroll", "Selection", "add_metrics", "agreed_rerolls", "difficulty", "hint_for", "padding_groups", "perturbed_clip",
    "select_rerolls", "truncate_hint", "with_hint",
]
