"""rova.eval.robustness: the eval.md formulas on a hand-made 2x2 grid, edge cases and properties."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rova.config.corruption import VARIANTS
from rova.eval.robustness import (
    CORRECT_THRESHOLD,
    OTHER_FAMILY,
    accuracy_grid,
    corruption_errors,
    family_of,
    flip_stats,
    is_correct,
    mpc,
    per_family,
    rpc,
    summarize,
)

# Hand-made 2x2 grid: rain (weather) and dusk (photometric) at severities 1 and 2.
CLEAN = 0.8
GRID = {"rain": {1: 0.7, 2: 0.5}, "dusk": {"1": 0.6, "2": 0.4}}
REFERENCE = {"config": {"name": "base"}, "clean": {"accuracy": 0.9}, "grid": {"rain": {"1": 0.6, "2": 0.4}, "dusk": {"1": 0.8, "2": 0.7}}}


def test_mpc_rpc_and_families_by_hand():
    summary = summarize(CLEAN, GRID)
    assert summary.mpc == pytest.approx((0.7 + 0.5 + 0.6 + 0.4) / 4)  # 0.55
    assert summary.rpc == pytest.approx(0.55 / 0.8)  # 0.6875
    assert summary.per_family == pytest.approx({"photometric": 0.5, "weather": 0.6})
    assert list(summary.per_family) == ["photometric", "weather"]  # catalogue order
    assert summary.per_corruption == pytest.approx({"dusk": 0.5, "rain": 0.6})
    assert summary.per_severity == pytest.approx({"1": 0.65, "2": 0.45})
    assert summary.families == {"dusk": "photometric", "rain": "weather"}
    assert summary.n_cells == 4 and summary.grid_complete
    assert summary.ce is None and summary.mce is None and summary.reasons == {}


def test_ce_mce_and_relative_mce_by_hand():
    summary = summarize({"accuracy": CLEAN, "n": 10}, GRID, reference=REFERENCE)
    # E rain: 0.3 + 0.5 = 0.8 vs reference 0.4 + 0.6 = 1.0; E dusk: 0.4 + 0.6 = 1.0 vs 0.2 + 0.3 = 0.5
    assert summary.ce == pytest.approx({"rain": 0.8, "dusk": 2.0})
    assert summary.mce == pytest.approx(1.4)
    # relative: E_clean 0.2, E_r,clean 0.1; rain (0.1 + 0.3) / (0.3 + 0.5) = 0.5; dusk (0.2 + 0.4) / (0.1 + 0.2) = 2
    assert summary.relative_ce == pytest.approx({"rain": 0.5, "dusk": 2.0})
    assert summary.relative_mce == pytest.approx(1.25)
    assert summary.reference == "base"
    assert summary.reasons == {} and summary.notes == []


def test_grid_of_aggregates_and_family_keys():
    grid = {"weather": {1: {"accuracy": 0.2, "n": 3}, 2: {"accuracy": None, "n": 0}}, "custom": {1: 0.4}}
    acc = accuracy_grid(grid)
    assert acc == {"weather": {"1": 0.2}, "custom": {"1": 0.4}}  # the empty cell is dropped
    assert per_family(grid) == pytest.approx({"weather": 0.2, OTHER_FAMILY: 0.4})
    assert family_of("weather") == "weather" and family_of("fog") == "weather" and family_of("x") == OTHER_FAMILY


def test_family_mean_is_over_cells_not_over_variants():
    grid = {"rain": {1: 1.0, 2: 1.0, 3: 1.0}, "fog": {1: 0.0}}
    assert per_family(grid)["weather"] == pytest.approx(0.75)


def item(pid, score, problem_type="multiple choice"):
    return {"benchmark": "b", "problem_id": pid, "problem_type": problem_type, "score": score, "extracted": True}


CLEAN_ITEMS = [item(1, 1.0), item(2, 1.0), item(3, 0.0), item(4, 0.6, "regression"), item(5, 0.4, "OCR")]
GRID_ITEMS = {
    "rain": {
        1: [item(1, 0.0), item(2, 1.0), item(3, 1.0), item(4, 0.5, "regression"), item(5, 0.9, "OCR")],
        2: [item(1, 0.0), item(2, 0.0), item(3, 0.0), item(4, 0.4, "regression")],  # item 5 skipped
    }
}


def test_flip_rates_by_hand():
    one = flip_stats(CLEAN_ITEMS, GRID_ITEMS["rain"][1])
    # right on clean: 1, 2, 4 (0.6 >= 0.5); right under rain/1: 2, 3, 4 (0.5), 5 -> flip: 1; unflips: 3, 5
    assert one == {"n": 5, "flips": 1, "unflips": 2, "clean_right": 3, "rate": 0.2,
                   "rate_given_clean_right": pytest.approx(1 / 3), "missing": 0}
    two = flip_stats(CLEAN_ITEMS, GRID_ITEMS["rain"][2])
    assert (two["n"], two["flips"], two["rate"], two["missing"]) == (4, 3, 0.75, 1)
    summary = summarize(0.6, {"rain": {1: 0.68, 2: 0.1}}, clean_items=CLEAN_ITEMS, grid_items=GRID_ITEMS)
    assert summary.flip_rate == {"rain": {"1": 0.2, "2": 0.75}}
    assert summary.mean_flip_rate == pytest.approx(0.475)


def test_correctness_rule():
    assert CORRECT_THRESHOLD == 0.5
    assert is_correct(1.0, "multiple choice") and not is_correct(0.99, "numerical")
    assert is_correct(0.5, "regression") and not is_correct(0.49, "grounding") and is_correct(0.7, "free-form")


def test_flip_items_must_be_identifiable():
    with pytest.raises(ValueError, match="twice"):
        flip_stats([item(1, 1.0), item(1, 0.0)], [])
    with pytest.raises(ValueError, match="key"):
        flip_stats([{"score": 1.0, "problem_type": "OCR"}], [])
    with pytest.raises(ValueError, match="clean_items"):
        summarize(0.5, GRID, grid_items=GRID_ITEMS)


def test_division_by_zero_gives_nan_with_a_reason_and_json_none():
    perfect_reference = {"clean": 1.0, "grid": {"rain": {1: 1.0, 2: 1.0}, "dusk": {1: 0.5, 2: 0.5}}}
    summary = summarize(0.0, GRID, reference=perfect_reference)
    assert math.isnan(summary.rpc) and "Acc_clean is 0" in summary.reasons["rpc"]
    assert math.isnan(summary.ce["rain"]) and "division by zero" in summary.reasons["ce.rain"]
    assert summary.ce["dusk"] == pytest.approx((0.4 + 0.6) / 1.0)
    assert summary.mce == pytest.approx(1.0)  # the finite CE only, and a note says which were left out
    assert any("rain" in note for note in summary.notes)
    assert math.isnan(summary.relative_ce["rain"]) and "does not grow" in summary.reasons["relative_ce.rain"]
    data = summary.to_dict()
    text = json.dumps(data, allow_nan=False)
    assert data["rpc"] is None and data["ce"]["rain"] is None and "conventions" in data
    assert json.loads(text)["reasons"]["rpc"].startswith("Acc_clean")


def test_relative_ce_with_a_reference_that_improves_under_corruption_is_nan():
    reference = {"clean": 0.5, "grid": {"rain": {1: 0.6, 2: 0.5}}}  # E_r growth -0.1 <= 0
    _, relative, reasons, _ = corruption_errors(0.8, {"rain": {1: 0.7, 2: 0.5}}, 0.5, reference["grid"])
    assert math.isnan(relative["rain"]) and "-0.1" in reasons["relative_ce.rain"]


def test_corruption_missing_from_reference_and_partial_severities():
    summary = summarize(CLEAN, {**GRID, "fog": {1: 0.3}}, reference={"clean": 0.9, "grid": {"rain": {1: 0.6}, "dusk": REFERENCE["grid"]["dusk"]}})
    assert math.isnan(summary.ce["fog"]) and "no cell" in summary.reasons["ce.fog"]
    assert summary.ce["rain"] == pytest.approx(0.3 / 0.4)  # severity 1 only, with a note
    assert any("severities both grids hold" in note for note in summary.notes)
    assert not summary.grid_complete


def test_empty_grid_and_missing_clean():
    summary = summarize(0.5, {})
    assert math.isnan(summary.mpc) and "mpc" in summary.reasons and "rpc" in summary.reasons
    with pytest.raises(ValueError):
        summarize({"accuracy": None}, GRID)
    with pytest.raises(ValueError):
        accuracy_grid({"rain": {1: 0.5, "1": 0.6}})


# --------------------------------------------------------------------------------------------------
# Properties

acc = st.floats(0.0, 1.0, allow_nan=False)
grids = st.dictionaries(
    st.sampled_from(VARIANTS), st.dictionaries(st.integers(1, 5), acc, min_size=1, max_size=5), min_size=1, max_size=6
)


@settings(max_examples=200, deadline=None)
@given(clean=st.floats(0.01, 1.0), grid=grids)
def test_rpc_is_mpc_over_clean_and_mpc_is_between_cells(clean, grid):
    summary = summarize(clean, grid)
    cells = [a for row in grid.values() for a in row.values()]
    assert min(cells) - 1e-12 <= summary.mpc <= max(cells) + 1e-12
    assert summary.rpc == pytest.approx(summary.mpc / clean)
    assert summary.mpc == pytest.approx(mpc(grid)) and summary.rpc == pytest.approx(rpc(mpc(grid), clean))
    for value in summary.per_family.values():
        assert min(cells) - 1e-12 <= value <= max(cells) + 1e-12
    assert summary.n_cells == len(cells)
    json.dumps(summary.to_dict(), allow_nan=False)


@settings(max_examples=100, deadline=None)
@given(clean=st.floats(0.0, 1.0), grid=grids)
def test_ce_against_itself_is_one_where_defined(clean, grid):
    summary = summarize(clean, grid, reference={"clean": clean, "grid": grid})
    for value in [*summary.ce.values(), *summary.relative_ce.values()]:
        assert math.isnan(value) or value == pytest.approx(1.0)
    for key, value in [*summary.ce.items(), *summary.relative_ce.items()]:
        if math.isnan(value):
            assert any(reason.endswith(key) for reason in summary.reasons)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([0.0, 0.3, 0.5, 1.0]), st.sampled_from([0.0, 0.3, 0.5, 1.0]), st.booleans()), max_size=20))
def test_flip_rate_is_a_fraction(rows):
    clean = [item(i, a, "multiple choice" if a in (0.0, 1.0) else "OCR") for i, (a, _, _) in enumerate(rows)]
    corrupted = [item(i, b, clean[i]["problem_type"] if b in (0.0, 1.0) else "OCR") for i, (_, b, keep) in enumerate(rows) if keep]
    stats = flip_stats(clean, corrupted)
    assert stats["n"] + stats["missing"] == len(rows)
    assert stats["flips"] + stats["unflips"] <= stats["n"]
    if stats["n"]:
        assert 0.0 <= stats["rate"] <= 1.0
        assert stats["rate"] <= (stats["rate_given_clean_right"] if stats["clean_right"] else 0.0) + 1e-12
    else:
        assert math.isnan(stats["rate"])


def test_items_with_item_id_are_matched_by_it():
    clean = [{"benchmark": "b", "item_id": "x", "problem_type": "OCR", "score": 0.9}]
    corrupted = [{"benchmark": "b", "item_id": "x", "problem_type": "OCR", "score": 0.1}]
    assert flip_stats(clean, corrupted)["flips"] == 1
