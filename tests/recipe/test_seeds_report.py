"""The recipe report over seeds, from canned results.json files written here (no model runs): mean ± sample std
of each compared eval step, paired differences seed by seed, a missing seed reported as missing, seeds.json;
and the mean / std / difference helpers as properties."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rova.eval.robustness import summarize
from rova.eval.scoring import aggregate
from rova.recipe.report import print_recipe_report, write_recipe_report
from rova.recipe.seeds import paired_differences, spread

N = 10  # items per aggregate: every accuracy below is a multiple of 1/N, so exact
# (clean, {severity: accuracy under fog}, clean lenient) per run; eval_rova has no results for seed 2.
RUNS = {
    "eval_sft": (0.5, {"1": 0.4, "5": 0.2}, 0.6),
    "eval_grpo_s0": (0.6, {"1": 0.5, "5": 0.3}, 0.9),
    "eval_grpo_s1": (0.7, {"1": 0.6, "5": 0.4}, 0.9),
    "eval_grpo_s2": (0.8, {"1": 0.6, "5": 0.4}, 0.9),
    "eval_rova_s0": (0.7, {"1": 0.6, "5": 0.4}, 0.7),
    "eval_rova_s1": (0.7, {"1": 0.7, "5": 0.5}, 0.7),
}


def _items(accuracy: float, lenient: float) -> list[dict]:
    return [{"benchmark": "demo", "item_id": f"demo/{i}", "problem_type": "multiple choice",
             "score": float(i < round(accuracy * N)), "lenient": float(i < round(lenient * N)), "extracted": True}
            for i in range(N)]


def _results(clean: float, grid: dict, lenient: float, *, with_summary: bool) -> dict:
    results = {"config": {"name": "x", "eval": {"seed": 0}}, "clean": aggregate(_items(clean, lenient)),
               "grid": {"fog": {s: aggregate(_items(a, a)) for s, a in grid.items()}}, "skipped_media": []}
    # What the eval stage writes (the robustness summary), or none: the report derives it from the grid.
    results["robustness"] = summarize(results["clean"], results["grid"]).to_dict() if with_summary else None
    return results


def _step(parent: Path, name: str, stage: str, base: str, seed) -> dict:
    return {"name": name, "stage": stage, "run_dir": str(parent / name), "after": [], "overrides": [],
            "base": base, "seed": seed}


def write_recipe(parent: Path, seeds: list[int], runs: dict, compare: list[str], differences: list) -> None:
    """recipe.json as the planner writes it (an sft step, then the eval steps; with seeds, every one but
    eval_sft per_seed: a copy per seed) and the runs' results.json files."""
    steps = [_step(parent, "sft", "sft", "sft", None)]
    for name in compare:
        per_seed = bool(seeds) and name != "eval_sft"
        copies = [(f"{name}_s{seed}", seed) for seed in seeds] if per_seed else [(name, None)]
        steps += [_step(parent, copy, "eval", name, seed) for copy, seed in copies]
    for step in steps:
        Path(step["run_dir"]).mkdir(parents=True, exist_ok=True)
        if step["name"] in runs:
            clean, grid, lenient = runs[step["name"]]
            results = _results(clean, grid, lenient, with_summary=step["name"] != "eval_grpo_s1")
            (Path(step["run_dir"]) / "results.json").write_text(json.dumps(results))
    recipe = {"name": "arms", "parent": str(parent), "steps": steps, "compare": compare, "seeds": seeds,
              "differences": differences}
    (parent / "recipe.json").write_text(json.dumps(recipe))


def _sample_std(values: list[float]) -> float:
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def _row(lines: list[str], first: str, after: str = "") -> list[str]:
    """The cells of the first table row starting with `first`, in the section after the heading `after`."""
    start = next(i for i, line in enumerate(lines) if line.startswith(after)) if after else 0
    line = next(line for line in lines[start:] if line.startswith(f"| {first} |"))
    return [cell.strip() for cell in line.strip("|").split("|")]


@pytest.fixture
def arms(tmp_path) -> Path:
    parent = tmp_path / "parent"
    write_recipe(parent, [0, 1, 2], RUNS, ["eval_sft", "eval_grpo", "eval_rova"],
                 [["eval_rova", "eval_grpo"], ["eval_rova", "eval_sft"]])
    return parent


def test_over_seeds_table_is_mean_and_sample_std_of_each_compared_step(arms):
    lines = write_recipe_report(arms)["lines"]
    header = _row(lines, "eval step", "## Over seeds")
    assert header == ["eval step", "n", "clean (%)", "mPC (%)", "rPC (%)", "clean lenient (%)", "mPC lenient (%)",
                      "rPC lenient (%)", "clean no `<answer>` (%)", "corrupted no `<answer>` (%)"]
    assert "## Over seeds (0, 1, 2): mean ± std" in lines
    grpo = _row(lines, "eval_grpo", "## Over seeds")
    assert grpo[1] == "3"
    assert grpo[2] == "70.0 ± 10.0"                                      # 60, 70, 80
    assert grpo[3] == f"46.7 ± {100 * _sample_std([0.4, 0.5, 0.5]):.1f}" == "46.7 ± 5.8"
    rpc = [0.4 / 0.6, 0.5 / 0.7, 0.5 / 0.8]
    assert grpo[4] == f"{100 * sum(rpc) / 3:.1f} ± {100 * _sample_std(rpc):.1f}"
    assert grpo[5] == "90.0 ± 0.0" and grpo[6] == grpo[3]                # lenient: 90 each seed; grid = strict
    assert grpo[8:] == ["0.0 ± 0.0", "0.0 ± 0.0"]                         # every output had its <answer>
    sft = _row(lines, "eval_sft", "## Over seeds")
    assert sft[1:5] == ["1 (not per seed)", "50.0", "30.0", "60.0"] and sft[5] == "60.0"  # one run: no ±


def test_a_missing_seed_is_reported_missing_not_dropped_from_n(arms):
    lines = write_recipe_report(arms)["lines"]
    rova = _row(lines, "eval_rova", "## Over seeds")
    assert rova[1] == "2 of 3; missing s2"
    assert rova[2:4] == ["70.0 ± 0.0", "55.0 ± 7.1"]
    data = json.loads((arms / "seeds.json").read_text())
    entry = data["steps"]["eval_rova"]
    assert entry["missing"] == [2] and entry["planned"] == 3 and entry["summary"]["clean_accuracy"]["n"] == 2
    assert [r["metrics"] is None for r in entry["runs"]] == [False, False, True]
    assert entry["runs"][2]["step"] == "eval_rova_s2"


def test_paired_differences_seed_by_seed(arms):
    lines = write_recipe_report(arms)["lines"]
    section = "## Paired differences over seeds (points, A − B)"
    assert _row(lines, "A − B", section) == ["A − B", "metric", "mean ± std", "n", "s0", "s1", "s2"]
    clean = _row(lines, "eval_rova − eval_grpo", section)
    # rova - grpo: seed 0 70 - 60, seed 1 70 - 70, seed 2 missing (no rova results).
    assert clean == ["eval_rova − eval_grpo", "clean", f"+5.0 ± {100 * _sample_std([0.1, 0.0]):.1f}",
                     "2 of 3; missing s2", "+10.0", "+0.0", "missing"]
    below = lines[lines.index(next(line for line in lines if line.startswith("| eval_rova − eval_grpo |"))) + 1]
    mpc = [cell.strip() for cell in below.strip("|").split("|")]  # the pair's next row: mPC, seed 1: 60 - 50
    assert mpc == ["", "mPC", "+10.0 ± 0.0", "2 of 3; missing s2", "+10.0", "+10.0", "missing"]
    # Against the shared SFT's one run: the same sft value in every seed's pair.
    sft = _row(lines, "eval_rova − eval_sft", section)
    assert sft[2:] == ["+20.0 ± 0.0", "2 of 3; missing s2", "+20.0", "+20.0", "missing"]
    data = json.loads((arms / "seeds.json").read_text())
    pair = data["differences"][0]
    assert (pair["a"], pair["b"], pair["missing"]) == ("eval_rova", "eval_grpo", [2])
    assert [r["difference"] and r["difference"]["clean_accuracy"] for r in pair["runs"]] == [
        pytest.approx(0.1), pytest.approx(0.0), None]
    summary = pair["summary"]
    assert summary["clean_accuracy"] == {"n": 2, "mean": pytest.approx(0.05), "std": pytest.approx(_sample_std([0.1, 0.0]))}
    assert summary["rpc"]["mean"] == pytest.approx((0.5 / 0.7 - 0.4 / 0.6 + 0.6 / 0.7 - 0.5 / 0.7) / 2)
    assert summary["clean_accuracy_lenient"]["mean"] == pytest.approx(0.7 - 0.9)  # lenient ones in seeds.json


def test_compare_table_uses_the_first_seeds_copies_and_the_report_is_printed(arms, capsys):
    written = write_recipe_report(arms)
    report = written["path"].read_text()
    assert "## eval_sft vs eval_grpo_s0 vs eval_rova_s0 (baseline: eval_sft; seed 0's copies of the per_seed steps)" in report
    assert (arms / "compare.md").is_file() and "| eval_grpo_s0 |" in written["table"]
    assert "## Over seeds (0, 1, 2)" in report and "[seeds.json](seeds.json)" in report
    assert print_recipe_report(arms) == 0
    printed = capsys.readouterr().out
    assert "| eval_grpo | 3 | 70.0 ± 10.0 |" in printed and "| eval_rova − eval_grpo | clean |" in printed


def test_one_seed_gives_the_value_alone_with_n_1(tmp_path):
    parent = tmp_path / "one"
    write_recipe(parent, [0], {k: v for k, v in RUNS.items() if k in ("eval_sft", "eval_grpo_s0")},
                 ["eval_sft", "eval_grpo"], [["eval_grpo", "eval_sft"]])
    lines = write_recipe_report(parent)["lines"]
    assert _row(lines, "eval_grpo", "## Over seeds")[1:4] == ["1", "60.0", "40.0"]
    assert _row(lines, "eval_grpo − eval_sft", "## Paired")[2:] == ["+10.0", "1", "+10.0"]
    assert json.loads((parent / "seeds.json").read_text())["steps"]["eval_grpo"]["summary"]["mpc"]["std"] is None


def test_differences_without_seeds_and_a_report_without_either(tmp_path):
    parent = tmp_path / "plain"
    runs = {"eval_sft": RUNS["eval_sft"], "eval_grpo": RUNS["eval_grpo_s0"]}
    write_recipe(parent, [], runs, ["eval_sft", "eval_grpo"], [["eval_grpo", "eval_sft"]])
    lines = write_recipe_report(parent)["lines"]
    assert not any(line.startswith("## Over seeds") for line in lines)
    assert _row(lines, "A − B", "## Paired") == ["A − B", "metric", "mean ± std", "n"]
    assert _row(lines, "eval_grpo − eval_sft", "## Paired") == ["eval_grpo − eval_sft", "clean", "+10.0", "1 (not per seed)"]
    # A recipe.json written before seeds existed (no seeds, differences, base, seed): the report as it was.
    old = tmp_path / "old"
    write_recipe(old, [], runs, ["eval_sft", "eval_grpo"], [])
    recipe = json.loads((old / "recipe.json").read_text())
    for key in ("seeds", "differences"):
        del recipe[key]
    for step in recipe["steps"]:
        del step["base"], step["seed"]
    (old / "recipe.json").write_text(json.dumps(recipe))
    report = write_recipe_report(old)["path"].read_text()
    assert "## eval_sft vs eval_grpo (baseline: eval_sft)" in report
    assert "Over seeds" not in report and "Paired differences" not in report
    assert not (old / "seeds.json").exists()


_fraction = st.floats(0.0, 1.0, allow_nan=False)


@given(st.lists(_fraction, max_size=8))
def test_spread_is_mean_and_sample_std(values):
    stats = spread(values)
    assert stats["n"] == len(values)
    if not values:
        assert stats["mean"] is None and stats["std"] is None
        return
    assert stats["mean"] == pytest.approx(float(np.mean(values)), abs=1e-12)
    if len(values) == 1:
        assert stats["std"] is None
    else:
        assert stats["std"] == pytest.approx(float(np.std(values, ddof=1)), abs=1e-9)


@given(st.lists(st.tuples(st.one_of(st.none(), _fraction), st.one_of(st.none(), _fraction)), min_size=1, max_size=6))
def test_paired_differences_pair_seed_by_seed(pairs):
    a = {seed: x for seed, (x, _) in enumerate(pairs)}
    b = {seed: y for seed, (_, y) in enumerate(pairs)}
    differences = paired_differences(a, b)
    assert list(differences) == list(a)
    both = [seed for seed in a if a[seed] is not None and b[seed] is not None]
    assert [seed for seed, d in differences.items() if d is not None] == both  # missing stays missing
    stats = spread([differences[seed] for seed in both])
    assert stats["n"] == len(both)
    if both:  # the mean difference is the difference of the means over the paired seeds
        mean_a = sum(a[s] for s in both) / len(both)
        mean_b = sum(b[s] for s in both) / len(both)
        assert stats["mean"] == pytest.approx(mean_a - mean_b, abs=1e-12)
