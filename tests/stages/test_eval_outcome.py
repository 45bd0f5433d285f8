"""The recipe report's line for an eval step is in percent, as the tables under it (issue 21, item 8)."""

from __future__ import annotations

import json

from rova.stages.eval import outcome


def test_the_eval_line_is_in_percent_like_the_tables(tmp_path):
    (tmp_path / "results.json").write_text(json.dumps({
        "clean": {"accuracy": 0.0417, "accuracy_lenient": 0.5, "extraction_failure_rate": 0.25},
        "robustness": {"mpc": 0.469, "mean_extraction_failure_rate": 0.6}}))
    assert outcome(tmp_path) == ("clean accuracy 4.2 % (lenient 50.0 %), mPC 46.9 %, no `<answer>` in 25.0 % of clean "
                                 "outputs and 60.0 % of corrupted ones")


def test_missing_numbers_read_n_a(tmp_path):
    (tmp_path / "results.json").write_text(json.dumps({"clean": {"accuracy": None}, "robustness": None}))
    assert outcome(tmp_path) == "clean accuracy n/a (lenient n/a)"
