"""python -m rova.eval.compare: compare.md, deltas and the delta heatmap of two (or more) results files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from rova.eval.compare import compare_files, main
from rova.eval.scoring import aggregate

ACC_A = {"rain": {"1": 0.8, "3": 0.6}, "night": {"1": 0.7, "3": 0.4}}
ACC_B = {"rain": {"1": 0.9, "3": 0.5}, "night": {"1": 0.7, "3": 0.6}}


def _items(accuracy: float, n: int = 10) -> list[dict]:
    right = round(accuracy * n)
    return [{"benchmark": "demo", "item_id": f"demo/{i}", "problem_type": "multiple choice",
             "score": 1.0 if i < right else 0.0, "extracted": True} for i in range(n)]


def _results(name: str, clean: float, grid: dict) -> dict:
    return {
        "config": {"name": name, "model": f"/models/{name}", "eval": {"seed": 0}},
        "clean": aggregate(_items(clean)),
        "grid": {c: {s: aggregate(_items(a)) for s, a in row.items()} for c, row in grid.items()},
        "robustness": None,
        "skipped_media": [],
    }


@pytest.fixture
def two_runs(tmp_path) -> list[Path]:
    paths = []
    for name, clean, grid in (("base", 0.9, ACC_A), ("ours", 0.8, ACC_B)):
        path = tmp_path / name / "results.json"
        path.parent.mkdir()
        path.write_text(json.dumps(_results(name, clean, grid)))
        paths.append(path)
    return paths


def test_files_and_delta_values(two_runs, tmp_path, capsys):
    out = tmp_path / "cmp"
    assert main([str(p) for p in two_runs] + ["--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| model |" in printed and "| base |" in printed and "| ours |" in printed
    markdown = (out / "compare.md").read_text()
    assert "delta_heatmap.png" in markdown and "Comparison against base" in markdown
    with Image.open(out / "delta_heatmap.png") as image:
        assert image.size[0] > 100 and image.size[1] > 50
    deltas = json.loads((out / "deltas.json").read_text())
    assert deltas["baseline"] == "base" and set(deltas["deltas"]) == {"ours"}
    for corruption, row in ACC_B.items():
        for severity, acc in row.items():
            assert deltas["deltas"]["ours"][corruption][severity] == pytest.approx(acc - ACC_A[corruption][severity])
    # The table's own numbers: clean 80.0 vs 90.0 (-10.0), mPC 67.5 vs 62.5 (+5.0).
    row = next(line for line in printed.splitlines() if line.startswith("| ours |"))
    assert "| 80.0 | -10.0 | 67.5 | +5.0 |" in row


def test_names_option_and_three_runs(two_runs, tmp_path):
    third = tmp_path / "third.json"
    third.write_text(json.dumps(_results("x", 0.5, {"rain": {"1": 0.3}})))
    written = compare_files([*two_runs, third], tmp_path / "cmp3", names=["A", "B", "C"])
    assert written["names"] == ["A", "B", "C"]
    assert written["deltas"]["C"] == {"rain": {"1": pytest.approx(0.3 - 0.8)}}
    assert (tmp_path / "cmp3" / "delta_heatmap_B.png").is_file()
    assert (tmp_path / "cmp3" / "delta_heatmap_C.png").is_file()
    assert not (tmp_path / "cmp3" / "delta_heatmap.png").exists()


def test_same_config_names_fall_back_to_run_folders(tmp_path):
    paths = []
    for run, grid in (("run1", ACC_A), ("run2", ACC_B)):
        path = tmp_path / run / "results.json"
        path.parent.mkdir()
        path.write_text(json.dumps(_results("same", 0.5, grid)))
        paths.append(path)
    assert compare_files(paths, tmp_path / "out")["names"] == ["run1", "run2"]


@pytest.mark.parametrize("bad", ["missing", "not_json", "not_results"])
def test_bad_path_is_one_line_exit_2(two_runs, tmp_path, capsys, bad):
    path = tmp_path / f"{bad}.json"
    if bad == "not_json":
        path.write_text("{oops")
    elif bad == "not_results":
        path.write_text("[1, 2]")
    assert main([str(two_runs[0]), str(path), "--out", str(tmp_path / "o")]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert "\n" not in err and str(path) in err and err.startswith("config error:")
    assert captured.out == "" and not (tmp_path / "o").exists()


def test_wrong_number_of_names_is_exit_2(two_runs, tmp_path, capsys):
    assert main([*map(str, two_runs), "--names", "a", "--out", str(tmp_path / "o")]) == 2
    assert "names" in capsys.readouterr().err


def test_the_table_shows_lenient_accuracy_and_missing_answers_beside_strict(tmp_path, capsys):
    """A base model that answers right but untagged: strict 0 %, lenient 100 %, 100 % without <answer>."""
    untagged = [{"benchmark": "demo", "item_id": f"demo/{i}", "problem_type": "multiple choice", "score": 0.0,
                 "lenient": 1.0, "extracted": False} for i in range(4)]
    paths = []
    for name, items in (("base", untagged), ("ours", _items(0.5, 4))):
        results = {"config": {"name": name}, "clean": aggregate(items),
                   "grid": {"fog": {"1": aggregate(items)}}, "robustness": None, "skipped_media": []}
        path = tmp_path / name / "results.json"
        path.parent.mkdir()
        path.write_text(json.dumps(results))
        paths.append(path)
    assert main([str(p) for p in paths] + ["--out", str(tmp_path / "cmp")]) == 0
    printed = capsys.readouterr().out
    header = next(line for line in printed.splitlines() if line.startswith("| model |"))
    assert "clean lenient (%) | mPC lenient (%) | clean no `<answer>` (%) | corrupted no `<answer>` (%)" in header
    base = next(line for line in printed.splitlines() if line.startswith("| base |"))
    assert base.startswith("| base | 0.0 |") and "| 100.0 | 100.0 | 100.0 | 100.0 |" in base
    # The per-corruption table: each model's share without <answer> beside its accuracy.
    fog = next(line for line in printed.splitlines() if line.startswith("| fog |"))
    assert fog == "| fog | 0.0 | 100.0 | 50.0 | 0.0 |"
    assert "Strict accuracy (the headline)" in printed
