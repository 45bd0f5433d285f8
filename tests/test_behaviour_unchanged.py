"""Refactors keep behaviour: four seeded tiny runs reproduce the numbers recorded before the change.

tests/golden/*.json were recorded by `python -m tests.support.golden` on the code before the architecture
refactor (issue 18): metrics and rollouts of 4-step grpo, tgrpo (corrupted branch + KL-consistency reward)
and memory runs, and results and predictions of an eval with a 2x2 corruption grid. Timing fields and
machine paths aside, every value must match (floats within 1e-6).
"""

from __future__ import annotations

import json

import pytest

from tests.support.golden import GOLDEN_DIR, RUNS, differences, values
from tests.support.runs import launch, only_run_dir


@pytest.mark.parametrize("name", list(RUNS))
def test_run_reproduces_the_recorded_numbers(name, tmp_path, cache_dir):
    proc = launch(tmp_path, cache_dir, *RUNS[name])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    expected = json.loads((GOLDEN_DIR / f"{name}.json").read_text())
    found = differences(expected, values(name, only_run_dir(tmp_path / "outputs")))
    assert not found, f"{len(found)} values moved, first ones:\n" + "\n".join(found[:20])


def test_the_comparison_catches_a_moved_value():
    expected = {"metrics.jsonl": [{"loss": 0.5, "reward/mean": 0.25, "branch": "clean"}]}
    assert differences(expected, {"metrics.jsonl": [{"loss": 0.5 + 1e-8, "reward/mean": 0.25, "branch": "clean"}]}) == []
    assert differences(expected, {"metrics.jsonl": [{"loss": 0.5001, "reward/mean": 0.25, "branch": "clean"}]})
    assert differences(expected, {"metrics.jsonl": [{"loss": 0.5, "reward/mean": 0.25}]})
    assert differences(expected, {"metrics.jsonl": []})
