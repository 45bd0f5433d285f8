"""Launch a planned recipe: write the parent and step run dirs, then run the steps here or submit them to SLURM.

Locally every step runs in its own process(es) (`python -m rova.worker`, torchrun or the DeepSpeed launcher,
as a single-stage run would), one after the other; a failing step stops the recipe, and a relaunch with
`run.dir=<parent>` resumes it: finished steps are skipped, the unfinished one resumes from its checkpoint.
"""

from __future__ import annotations

import datetime as dt
import json
import sys

from omegaconf import OmegaConf

from rova.recipe.plan import RECIPE_JSON, RecipePlan
from rova.utils.io import atomic_write_json


def write_plan(plan: RecipePlan, root_overrides: list[str], root_resolved) -> None:
    """The parent dir (resolved.yaml of the recipe, meta.json, recipe.json with its launches) and each
    pending step's run dir (resolved.yaml, meta.json). A finished step's files are left as they are."""
    from rova.launch.dispatch import REPO
    from rova.launch.rundir import write_run_dir

    write_run_dir(plan.parent, root_resolved, root_overrides, REPO)
    previous = {}
    if (plan.parent / RECIPE_JSON).exists():
        previous = json.loads((plan.parent / RECIPE_JSON).read_text())
    launches = previous.get("launches", []) + [{
        "time": dt.datetime.now().isoformat(timespec="seconds"), "command": [sys.executable, *sys.argv],
        "skipped": [s.name for s in plan.steps if s.done], "cluster": plan.steps[0].cfg.cluster.name,
        **({"rerun_unreadable": plan.rerun_unreadable} if plan.rerun_unreadable else {}),
    }]
    atomic_write_json(plan.parent / RECIPE_JSON, {**plan.to_json(), "launches": launches})
    for step in plan.pending:
        write_run_dir(step.run_dir, OmegaConf.structured(step.cfg), step.overrides, REPO, extended=step.extended)


def describe(plan: RecipePlan) -> None:
    print(f"[rova] recipe {plan.name}: {plan.parent}", flush=True)
    repeated = list(dict.fromkeys(s.base for s in plan.steps if s.seed is not None))
    if repeated:
        print(f"[rova]   seeds {', '.join(map(str, plan.seeds))}: {', '.join(repeated)} run once per seed "
              "(<step>_s<seed>)", flush=True)
    for step in plan.steps:
        reads = f" (reads {', '.join(step.after)})" if step.after else ""
        state = "finished, skipped" if step.done else "to run"
        print(f"[rova]   {step.name:<14} stage={step.stage:<6} {state}{reads}", flush=True)
    for note in plan.notes:
        print(f"[rova] note: {note}", flush=True)


def run_local(plan: RecipePlan) -> int:
    """Run the pending steps in order; stop at the first failure. Ends with the recipe report."""
    from rova.launch.dispatch import run_local_workers
    from rova.recipe.report import print_recipe_report
    from rova.stages.assets import prepare_assets
    from rova.config.stage import get_spec

    for step in plan.steps:
        if step.done:
            continue
        print(f"[rova] recipe step {step.name} ({step.stage}): {step.run_dir}", flush=True)
        prepare_assets(step.cfg)
        code = run_local_workers(step.cfg, step.run_dir)
        finished = get_spec(step.stage).finished(step.run_dir)
        if code != 0 or not finished:
            why = f"exit {code}" if code != 0 else f"no readable {get_spec(step.stage).done} was written"
            print(f"[rova] recipe step {step.name} failed ({why}): {step.run_dir}; relaunch with "
                  f"run.dir={plan.parent} to resume it", file=sys.stderr, flush=True)
            return 1
    return print_recipe_report(plan.parent)


def launch_recipe(plan: RecipePlan, root_overrides: list[str], root_resolved, release=lambda: None) -> int:
    """Write the plan, then run it here or submit it; `release` hands the run dirs' locks on once submitted."""
    write_plan(plan, root_overrides, root_resolved)
    describe(plan)
    if plan.steps[0].cfg.cluster.name == "slurm":
        from rova.recipe.slurm import submit_recipe

        return submit_recipe(plan, release=release)
    return run_local(plan)
