"""The recipe's final report: one line per step (what it produced) and the eval steps compared.

`<parent>/report.md` links every step's run dir; with `recipe.compare` (baseline first) it includes
rova.eval.compare's tables (clean accuracy, mPC, rPC, flip rate, per family) and writes compare.md,
deltas.json and delta_heatmap.png into the parent dir; a per_seed eval step is compared through its first
seed's copy. With `recipe.seeds` or `recipe.differences` it adds the tables over seeds and writes seeds.json
(rova.recipe.seeds). Reads only files, so it runs anywhere: at the end of
a local recipe, or as the last SLURM job of the chain (`RecipeReport`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

REPORT = "report.md"


def step_outcome(step: dict[str, Any]) -> str:
    """A few words on what a step produced: its stage's declared outcome (rova.config.stage)."""
    from rova.config.stage import get_spec

    return get_spec(step["stage"]).outcome(Path(step["run_dir"]))


def write_recipe_report(parent: Path) -> dict[str, Any]:
    """report.md in the parent dir (and the comparison files when recipe.compare names eval steps)."""
    from rova.eval.compare import compare_files
    from rova.config.stage import get_spec
    from rova.recipe.plan import RECIPE_JSON
    from rova.recipe.seeds import runs_by_step, write_seeds
    from rova.utils.io import atomic_write_text

    parent = Path(parent)
    recipe = json.loads((parent / RECIPE_JSON).read_text())
    steps = {s["name"]: s for s in recipe["steps"]}
    lines = [f"# Recipe {recipe['name']}", "", f"Run dir: `{parent}`", "", "| step | stage | run dir | outcome |",
             "|---|---|---|---|"]
    for step in recipe["steps"]:
        rel = Path(step["run_dir"]).relative_to(parent) if Path(step["run_dir"]).is_relative_to(parent) else step["run_dir"]
        lines.append(f"| {step['name']} | {step['stage']} | [{rel}]({rel}) | {step_outcome(step)} |")
    lines.append("")
    rerun = (recipe.get("launches") or [{}])[-1].get("rerun_unreadable")
    if rerun:
        lines += [f"Run again by the last launch because their done file did not parse: {', '.join(rerun)}.", ""]
    table = None
    # A per_seed eval step is compared through its first seed's copy; the seeds' spread is the next section.
    seeds = recipe.get("seeds") or []
    runs = runs_by_step(recipe)
    entries = [name if None in runs[name] else runs[name][seeds[0]]["name"] for name in recipe["compare"]]
    compared = [name for name in entries if get_spec("eval").finished(Path(steps[name]["run_dir"]))]
    if len(compared) >= 2:
        written = compare_files([Path(steps[n]["run_dir"]) / "results.json" for n in compared], parent, compared)
        table = written["table"]
        of_seed = f"; seed {seeds[0]}'s copies of the per_seed steps" if entries != recipe["compare"] else ""
        lines += [f"## {' vs '.join(compared)} (baseline: {compared[0]}{of_seed})", "", table.rstrip(), "",
                  "Details and the delta heatmap: [compare.md](compare.md)", ""]
    elif recipe["compare"]:
        missing = [n for n in entries if n not in compared]
        lines += [f"No comparison: eval steps {', '.join(missing)} have no results.json.", ""]
    lines += write_seeds(parent, recipe)["lines"]
    path = atomic_write_text(parent / REPORT, "\n".join(lines))
    return {"path": path, "table": table, "lines": lines}


def print_recipe_report(parent: Path) -> int:
    written = write_recipe_report(parent)
    print("\n".join(line for line in written["lines"] if not line.startswith("Details")).rstrip(), flush=True)
    print(f"[rova] recipe report: {written['path']}", flush=True)
    return 0


class RecipeReport:
    """The picklable callable of the recipe's last SLURM job: the report, once every step has finished."""

    def __init__(self, parent: str):
        self.parent = str(parent)

    def __call__(self) -> dict:
        written = write_recipe_report(Path(self.parent))
        return {"report": str(written["path"])}
