"""The recipe report over seeds: each compared eval step as mean ± std over its seeds, and paired differences.

With `recipe.seeds`, a per_seed eval step X ran once per seed, as X_s<seed>. For every `recipe.compare` entry
this reads each run's results.json (clean accuracy, mPC and rPC, strict and lenient:
rova.eval.report.headline_metrics) and gives the mean and the sample standard deviation (n - 1) over the
seeds; for every `recipe.differences` pair [A, B], the paired difference A - B seed by seed, then its mean and
std. A step that is not per_seed (the shared SFT's eval) is one run: n = 1, and in a difference it is the same
value for every seed. A seed whose results.json is missing is reported as missing: n counts the seeds with a
value, shown against the seeds planned ("2 of 3, missing s2"), never a silently smaller n.
`<parent>/seeds.json` holds every number as a fraction; the markdown shows percent and points.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any, Optional, Sequence

SEEDS_JSON = "seeds.json"
# (results key, column name); the first three are the headline (strict), then the lenient ones, then the share of
# outputs without an <answer> span (clean, and the mean over the grid's cells) that explains a low strict number.
METRICS = (("clean_accuracy", "clean"), ("mpc", "mPC"), ("rpc", "rPC"), ("clean_accuracy_lenient", "clean lenient"),
           ("mpc_lenient", "mPC lenient"), ("rpc_lenient", "rPC lenient"),
           ("clean_extraction_failure_rate", "clean no `<answer>`"),
           ("mean_extraction_failure_rate", "corrupted no `<answer>`"))
STRICT = METRICS[:3]
MISSING = "missing"
NOTE = ("Mean ± sample standard deviation (n − 1) over the seeds; a lone value where n = 1 (no spread). A "
        "step that is not per_seed is one run, the same for every seed. Strict accuracy is the headline, "
        "lenient beside it, then the share of outputs without an `<answer>` span. Every number, seed by seed: [seeds.json](seeds.json).")


def spread(values: Sequence[float]) -> dict[str, Any]:
    """{"n", "mean", "std"}: std is the sample standard deviation (n - 1), None below two values; mean None for none."""
    values = [float(v) for v in values]
    return {"n": len(values), "mean": statistics.fmean(values) if values else None,
            "std": statistics.stdev(values) if len(values) >= 2 else None}


def paired_differences(a: dict[Any, Optional[float]], b: dict[Any, Optional[float]]) -> dict[Any, Optional[float]]:
    """{seed: a[seed] - b[seed]}, None where either has no value."""
    return {seed: None if a.get(seed) is None or b.get(seed) is None else a[seed] - b[seed] for seed in a}


def _summary(per_seed: dict[Any, Optional[dict]]) -> dict[str, dict[str, Any]]:
    return {key: spread([m[key] for m in per_seed.values() if m is not None and m.get(key) is not None])
            for key, _ in METRICS}


def _metrics(run_dir: Path) -> Optional[dict[str, Optional[float]]]:
    from rova.eval.compare import read_results
    from rova.eval.report import headline_metrics

    path = Path(run_dir) / "results.json"
    return headline_metrics(read_results(path)) if path.exists() else None


def runs_by_step(recipe: dict[str, Any]) -> dict[str, dict[Optional[int], dict[str, Any]]]:
    """{step as written: {seed: its run in recipe.json}}; the seed is None for a step that runs once."""
    runs: dict[str, dict[Optional[int], dict[str, Any]]] = {}
    for step in recipe["steps"]:
        runs.setdefault(step.get("base") or step["name"], {})[step.get("seed")] = step
    return runs


def aggregate(recipe: dict[str, Any]) -> dict[str, Any]:
    """seeds.json's content: per compared step its runs' metrics and their spread; per difference pair the same."""
    runs = runs_by_step(recipe)
    seeds = list(recipe.get("seeds") or [])
    values = {name: {seed: _metrics(Path(step["run_dir"])) for seed, step in runs[name].items()}
              for name in recipe["compare"]}
    steps = {}
    for name, per_seed in values.items():
        steps[name] = {"per_seed": None not in per_seed, "planned": len(per_seed),
                       "missing": [seed for seed, m in per_seed.items() if m is None],
                       "runs": [{"seed": seed, "step": runs[name][seed]["name"], "metrics": m} for seed, m in per_seed.items()],
                       "summary": _summary(per_seed)}
    differences = []
    for a, b in recipe.get("differences") or []:
        paired = seeds if steps[a]["per_seed"] or steps[b]["per_seed"] else [None]
        # A step run once stands for every seed: the same value in each pair.
        side = {name: {seed: values[name].get(seed if steps[name]["per_seed"] else None) for seed in paired}
                for name in (a, b)}
        present = [seed for seed in paired if side[a][seed] is not None and side[b][seed] is not None]
        by_metric = {key: paired_differences({seed: side[a][seed][key] for seed in present},
                                             {seed: side[b][seed][key] for seed in present}) for key, _ in METRICS}
        per_seed = {seed: {key: by_metric[key][seed] for key, _ in METRICS} if seed in present else None
                    for seed in paired}
        differences.append({"a": a, "b": b, "per_seed": paired != [None], "planned": len(paired),
                            "missing": [seed for seed, d in per_seed.items() if d is None],
                            "runs": [{"seed": seed, "difference": d} for seed, d in per_seed.items()],
                            "summary": _summary(per_seed)})
    return {"seeds": seeds, "units": "fractions (0.5 = 50 %); std: sample standard deviation (n - 1), null below n = 2",
            "steps": steps, "differences": differences}


def _value(stats: dict[str, Any], signed: bool = False) -> str:
    if not stats["n"]:
        return "n/a"
    mean = f"{100.0 * stats['mean']:+.1f}" if signed else f"{100.0 * stats['mean']:.1f}"
    return mean if stats["std"] is None else f"{mean} ± {100.0 * stats['std']:.1f}"


def _count(entry: dict[str, Any], n: Optional[int] = None) -> str:
    """How many seeds a row stands on: "3", "2 of 3 (missing s2)", "1 (not per seed)"."""
    if not entry["per_seed"]:
        return "1 (not per seed)" if not entry["missing"] else "0 (missing)"
    have = entry["planned"] - len(entry["missing"]) if n is None else n
    if have == entry["planned"]:
        return str(have)
    missing = f"; missing {', '.join(f's{seed}' for seed in entry['missing'])}" if entry["missing"] else ""
    return f"{have} of {entry['planned']}{missing}"


def _row(cells: Sequence[Any]) -> str:
    return "| " + " | ".join(str(cell) for cell in cells) + " |"


def over_seeds_lines(data: dict[str, Any]) -> list[str]:
    """The markdown: "over seeds" (with recipe.seeds) and the paired differences (with recipe.differences)."""
    lines: list[str] = []
    if data["seeds"] and data["steps"]:
        lines += [f"## Over seeds ({', '.join(map(str, data['seeds']))}): mean ± std", "",
                  _row(["eval step", "n", *(f"{label} (%)" for _, label in METRICS)]),
                  "|---|---|" + "---|" * len(METRICS)]
        for name, entry in data["steps"].items():
            have = entry["planned"] - len(entry["missing"])
            cells = []
            for key, _ in METRICS:
                stats = entry["summary"][key]
                cells.append(_value(stats) + (f" (n={stats['n']})" if 0 < stats["n"] < have else ""))
            lines.append(_row([name, _count(entry), *cells]))
        lines += ["", NOTE, ""]
    if data["differences"]:
        seeds = data["seeds"]
        lines += ["## Paired differences over seeds (points, A − B)", "",
                  _row(["A − B", "metric", "mean ± std", "n", *(f"s{seed}" for seed in seeds)]),
                  "|---|---|---|---|" + "---|" * len(seeds)]
        for pair in data["differences"]:
            by_seed = {run["seed"]: run["difference"] for run in pair["runs"]}
            for index, (key, label) in enumerate(STRICT):
                cells = []
                for seed in seeds:
                    if not pair["per_seed"]:
                        cells.append("—")
                    elif by_seed.get(seed) is None or by_seed[seed][key] is None:
                        cells.append(MISSING)
                    else:
                        cells.append(f"{100.0 * by_seed[seed][key]:+.1f}")
                stats = pair["summary"][key]
                title = f"{pair['a']} − {pair['b']}" if index == 0 else ""
                lines.append(_row([title, label, _value(stats, signed=True), _count(pair, stats["n"]), *cells]))
        lines += ["", "Each seed's A − B is taken between the same seed's runs (a step that is not per_seed: its one "
                  "run). Lenient differences: seeds.json.", ""]
    return lines


def write_seeds(parent: Path, recipe: dict[str, Any]) -> dict[str, Any]:
    """seeds.json in the parent dir (atomically) and the report's lines; nothing without seeds or differences."""
    from rova.utils.io import atomic_write_json

    if not recipe["compare"] or not (recipe.get("seeds") or recipe.get("differences")):
        return {"path": None, "lines": [], "data": None}
    data = aggregate(recipe)
    path = atomic_write_json(Path(parent) / SEEDS_JSON, data)
    return {"path": path, "lines": over_seeds_lines(data), "data": data}
