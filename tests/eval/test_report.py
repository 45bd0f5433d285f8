"""rova.eval.report: the markdown carries the numbers, the PNGs decode, compare's deltas, atomic files."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from rova.eval.report import (
    compare,
    delta_heatmap_png,
    family_chart_png,
    heatmap_png,
    markdown_report,
    write_report,
)
from rova.eval.robustness import summarize
from rova.eval.scoring import aggregate, scoring_conventions


def items(accuracy: float, n: int = 10, benchmark: str = "videomme", **extra) -> list[dict]:
    right = round(accuracy * n)
    return [
        {"benchmark": benchmark, "item_id": f"{benchmark}-{i}", "problem_type": "multiple choice",
         "score": 1.0 if i < right else 0.0, "extracted": i != n - 1, **extra}
        for i in range(n)
    ]


GRID_ACC = {"rain": {"1": 0.7, "2": 0.5}, "dusk": {"1": 0.6, "2": 0.4}}
REFERENCE = {"config": {"name": "base"}, "clean": {"accuracy": 0.9},
             "grid": {"rain": {"1": 0.6, "2": 0.4}, "dusk": {"1": 0.8, "2": 0.7}}}


def make_results(shift: float = 0.0, seed: int = 7, name: str = "ours") -> dict:
    clean_items = items(0.8, duration="short")
    grid_items = {c: {s: items(a + shift) for s, a in row.items()} for c, row in GRID_ACC.items()}
    clean = aggregate(clean_items, ["duration"], skipped_media=2)
    grid = {c: {s: aggregate(cell) for s, cell in row.items()} for c, row in grid_items.items()}
    robustness = summarize(clean, grid, clean_items=clean_items, grid_items=grid_items, reference=REFERENCE)
    return {
        "config": {"name": name, "model": f"/models/{name}", "eval": {"seed": seed, "severities": [1, 2]},
                   "scoring": scoring_conventions()},
        "clean": clean,
        "grid": grid,
        "robustness": robustness.to_dict(),
    }


def test_results_dict_is_strict_json():
    results = make_results()
    assert json.loads(json.dumps(results, allow_nan=False)) == results


def test_markdown_contains_the_numbers():
    text = markdown_report(make_results(), images={"heatmap": "heatmap.png", "families": "families.png"})
    assert "# Evaluation report: ours" in text
    # Strict is the headline; these items predate lenient scoring, so lenient reads n/a rather than a number.
    assert "**80.0 %** strict over 10 items; lenient n/a; extraction failures 1 (10.0 %); skipped media 2." in text
    assert "| multiple choice | 10 | 80.0 | n/a | 1 |" in text
    assert "| videomme | 10 | 80.0 | n/a | duration 80.0 | 1 | 0 |" in text
    assert "| short | 10 | 80.0 |" in text
    # clean, mPC 0.55, rPC 0.6875, mean flip, mCE 1.4, relative mCE 1.25 (hand-computed in test_eval_robustness)
    assert "| 80.0 | 55.0 | 68.8 |" in text and "| 140.0 | 125.0 |" in text
    assert "| photometric | 50.0 | -30.0 |" in text and "| weather | 60.0 | -20.0 |" in text
    # rain: s1 70 % with 1 of 10 items flipped (items 0-7 right clean, 0-6 right at s1), s2 50 % with 3 flipped
    # then the lenient mean (n/a: no lenient scores here), the share without <answer> (1 item of 10), flip, CE
    assert "| rain | weather | 70.0 (10.0) | 50.0 (30.0) | 60.0 | n/a | 10.0 | 20.0 | 80.0 | 50.0 |" in text
    assert "| dusk | photometric | 60.0 (20.0) | 40.0 (40.0) | 50.0 | n/a | 10.0 | 30.0 | 200.0 | 200.0 |" in text
    assert "![accuracy heatmap](heatmap.png)" in text and "![per-family accuracy](families.png)" in text
    assert "1e-8" in text  # the MRA convention is stated


def test_markdown_without_robustness_computes_it_from_the_grid_and_lists_reasons():
    results = {"clean": {"accuracy": 0.0, "n": 1}, "grid": {"fog": {1: 0.0}}}
    text = markdown_report(results)
    assert "| 0.0 | 0.0 | n/a | n/a |" in text
    assert "`rpc`: Acc_clean is 0" in text


def test_clean_only_report_has_no_robustness_section():
    results = {"config": {"model": "m"}, "clean": aggregate(items(0.5)), "grid": {}, "robustness": None}
    text = markdown_report(results)
    assert "Clean accuracy" in text and "Robustness" not in text


def _table_rows(text: str) -> list[list[str]]:
    """The cells of every Markdown table row, split on unescaped `|` as a renderer does."""
    import re

    return [re.split(r"(?<!\\)\|", line.strip())[1:-1] for line in text.splitlines() if line.startswith("|")]


def test_a_sub_task_key_with_spellings_keeps_every_table_whole_and_names_the_key_that_matched():
    """Issue 21, item 2: the mvbench preset's "task_type|task" shifted cells a column and broke the per-task table."""
    spec = "task_type|task"
    records = (items(0.5, benchmark="mvbench", **{spec: "Action Sequence", "subtask_matched": {spec: "task_type"}})
               + items(1.0, n=4, benchmark="mvbench", **{spec: "Fine|Grained", "subtask_matched": {spec: "task_type"}}))
    clean = aggregate(records, [spec])
    assert clean["by_benchmark"]["mvbench"]["subtask_spellings"] == {spec: ["task_type"]}
    text = markdown_report({"config": {"model": "m"}, "clean": clean, "grid": {}, "robustness": None})
    assert "#### mvbench: per task_type" in text and "per task_type|task" not in text
    tables, current = [], []
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            current.append(line)
        elif current:
            tables.append(_table_rows("\n".join(current)))
            current = []
    assert tables
    for rows in tables:  # every row of a table has its header's number of cells
        assert len({len(row) for row in rows}) == 1, rows
    per_task = next(rows for rows in tables if rows[0][0].strip() == "task_type")
    assert [row[0].strip() for row in per_task[2:]] == ["Action Sequence", "Fine\\|Grained"]


def test_a_key_without_spellings_adds_nothing_to_the_results():
    assert "subtask_spellings" not in aggregate(items(0.5, duration="short"), ["duration"])["by_benchmark"]["videomme"]


def assert_png(path, min_size=(200, 100)):
    with Image.open(path) as image:
        image.load()
        assert image.format == "PNG"
        assert image.size[0] >= min_size[0] and image.size[1] >= min_size[1]
        extrema = image.convert("L").getextrema()
        assert extrema[0] < extrema[1]  # not a blank picture


def test_pngs_decode(tmp_path):
    results = make_results()
    assert_png(heatmap_png(results["grid"], tmp_path / "heatmap.png"))
    assert_png(heatmap_png({"rain": {1: 0.5, 3: 0.2}, "fog": {2: 0.9}}, tmp_path / "sparse.png"))
    assert_png(family_chart_png(results["robustness"]["per_family"], tmp_path / "families.png", clean=0.8))
    assert_png(delta_heatmap_png({"rain": {"1": -0.1, "2": 0.05}}, tmp_path / "delta.png"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["delta.png", "families.png", "heatmap.png", "sparse.png"]


def test_empty_pictures_are_refused(tmp_path):
    with pytest.raises(ValueError):
        heatmap_png({}, tmp_path / "x.png")
    with pytest.raises(ValueError):
        family_chart_png({"weather": None}, tmp_path / "y.png")
    assert not list(tmp_path.iterdir())


def test_write_report(tmp_path):
    written = write_report(make_results(), tmp_path / "run")
    assert set(written) == {"heatmap", "families", "report"}
    for key in ("heatmap", "families"):
        assert_png(written[key])
    text = written["report"].read_text()
    assert "](heatmap.png)" in text and "](families.png)" in text and "55.0" in text
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["families.png", "heatmap.png", "report.md"]


def test_write_report_accepts_a_summary_object_and_clean_only(tmp_path):
    results = make_results()
    results["robustness"] = summarize(results["clean"], results["grid"])
    assert set(write_report(results, tmp_path / "a")) == {"heatmap", "families", "report"}
    clean_only = {"clean": aggregate(items(0.5)), "grid": {}, "robustness": None}
    assert set(write_report(clean_only, tmp_path / "b")) == {"report"}


def test_compare_table_and_deltas(tmp_path):
    ours, better = make_results(), make_results(shift=0.1, seed=8, name="better")
    table, deltas = compare([ours, better], ["ours", "better"])
    assert set(deltas) == {"better"}
    assert deltas["better"] == {
        "dusk": {"1": pytest.approx(0.1), "2": pytest.approx(0.1)},
        "rain": {"1": pytest.approx(0.1), "2": pytest.approx(0.1)},
    }
    # better: mPC 0.65 (+10.0 points), rPC 0.8125
    assert "| ours | 80.0 | +0.0 | 55.0 | +0.0 | 68.8 |" in table
    assert "| better | 80.0 | +0.0 | 65.0 | +10.0 | 81.2 |" in table
    assert "| rain | 60.0 | 10.0 | 70.0 | 10.0 |" in table  # each model's accuracy, its share without <answer>
    assert "`eval.seed`" in table and "scoring" not in table.split("differ")[-1]
    assert_png(delta_heatmap_png(deltas["better"], tmp_path / "delta.png"))


def test_compare_baseline_and_validation():
    ours, better = make_results(), make_results(shift=0.1)
    _, deltas = compare([ours, better], ["ours", "better"], baseline=1)
    assert deltas["ours"]["rain"]["1"] == pytest.approx(-0.1)
    table, _ = compare([ours, better], ["a", "b"])
    assert "differ" not in table  # same config apart from name/model
    with pytest.raises(ValueError):
        compare([ours], ["a", "b"])
    with pytest.raises(ValueError):
        compare([ours, better], ["a", "a"])


def test_a_model_right_but_untagged_shows_why_its_grid_is_zero():
    """Issue 21 (1): every answer right but none in <answer>: each grid row, cell and family shows 100 % without
    <answer> and 100 % lenient beside the 0.0, and the headline table says the same of clean and corrupted."""
    untagged = [{"benchmark": "demo", "item_id": f"demo/{i}", "problem_type": "multiple choice", "score": 0.0,
                 "lenient": 1.0, "extracted": False} for i in range(4)]
    cell = aggregate(untagged)
    grid = {"rain": {"1": cell, "2": cell}, "dusk": {"1": cell, "2": cell}}
    summary = summarize(cell, grid, clean_items=untagged, grid_items={c: dict(row) for c, row in
                                                                      {"rain": {"1": untagged, "2": untagged},
                                                                       "dusk": {"1": untagged, "2": untagged}}.items()})
    assert summary.mean_extraction_failure_rate == 1.0 and summary.clean_extraction_failure_rate == 1.0
    assert summary.extraction_failure_rate == {"rain": {"1": 1.0, "2": 1.0}, "dusk": {"1": 1.0, "2": 1.0}}
    text = markdown_report({"config": {"name": "base"}, "clean": cell, "grid": grid, "robustness": summary.to_dict()})
    lines = text.splitlines()
    headline = lines.index(next(line for line in lines if line.startswith("| clean (%) |")))
    assert "clean no `<answer>` (%) | corrupted no `<answer>` (%)" in lines[headline]
    assert lines[headline + 2].endswith("| 100.0 | 100.0 |")
    rain = [line for line in lines if line.startswith("| rain |")]
    # The accuracy table (mean, lenient mean, no <answer>), then the per-cell no-<answer> and lenient tables.
    assert "| 0.0 | 100.0 | 100.0 |" in rain[0]
    assert rain[1:] == ["| rain | 100.0 | 100.0 |", "| rain | 100.0 | 100.0 |"]
    assert "### Outputs without an `<answer>` span (%) per corruption and severity" in text
    weather = next(line for line in lines if line.startswith("| weather |"))
    assert weather == "| weather | 0.0 | +0.0 | 100.0 | 100.0 |"


def test_the_mce_header_names_the_reference_and_the_path_goes_below():
    results = make_results()
    results["robustness"]["reference"] = "eval_sft"
    results["config"]["eval"]["reference"] = "/runs/recipe/eval_sft/results.json"
    text = markdown_report(results)
    header = next(line for line in text.splitlines() if line.startswith("| clean (%) |"))
    assert "mCE vs eval_sft (%)" in header and "/runs/" not in header
    assert "Reference `eval_sft`: `/runs/recipe/eval_sft/results.json`." in text
