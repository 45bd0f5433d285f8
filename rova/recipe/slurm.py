"""A recipe on SLURM: every pending step is its own job (an array job for eval/cot shards), all submitted at
once, each held by `afterok` dependencies on the steps it reads from; a last small job writes the report once
every step has succeeded. A failed step cancels what depends on it (`kill-on-invalid-dep`), so nothing waits
forever. Each step job requeues and resumes like a single-stage run (rova.launch.slurm.SlurmRun)."""

from __future__ import annotations

from pathlib import Path

from rova.recipe.plan import RecipePlan


def job_dependency(job_ids: list[str]) -> dict[str, str]:
    """sbatch's dependency flags for `afterok` on these jobs (an array's tasks count by their array job id)."""
    if not job_ids:
        return {}
    bases = sorted({j.split("_")[0] for j in job_ids}, key=int)
    return {"dependency": "afterok:" + ":".join(bases), "kill_on_invalid_dep": "yes"}


def submit_recipe(plan: RecipePlan, release=lambda: None) -> int:
    """Submit every pending step and the report job; then `release` the launcher's locks (the jobs hold the run
    dirs from here: rova.launch.rundir)."""
    from rova.launch.slurm import make_executor, run_tasks, submit_tasks, wait_for
    from rova.recipe.report import RecipeReport, print_recipe_report

    folder = plan.parent / "slurm"
    submitted: dict[str, list[str]] = {}
    all_jobs, all_dirs = [], []
    for step in plan.pending:
        after = [j for name in step.after if name in submitted for j in submitted[name]]
        executor = make_executor(step.cfg, folder, name=f"rova-{plan.name}-{step.name}",
                                 slurm_additional_parameters=job_dependency(after))
        tasks = run_tasks(step.cfg, step.run_dir)
        jobs = submit_tasks(executor, tasks, [step.run_dir] * len(tasks), folder)
        submitted[step.name] = [job.job_id for job in jobs]
        all_jobs += jobs
        all_dirs += [step.run_dir] * len(jobs)
    if not all_jobs:  # every step finished in an earlier launch
        release()
        return print_recipe_report(plan.parent)
    last = plan.steps[-1].cfg
    report_executor = make_executor(
        last, folder, name=f"rova-{plan.name}-report", nodes=1, gpus_per_node=None, mem_gb=None, cpus_per_task=1, timeout_min=30,
        slurm_additional_parameters=job_dependency([j.job_id for j in all_jobs]))
    report_job = report_executor.submit(RecipeReport(str(plan.parent)))
    print(f"[rova] submitted {report_job.job_id} -> {plan.parent}/report.md (after every step)", flush=True)
    release()
    if not last.cluster.wait:
        return 0
    code = wait_for(all_jobs + [report_job], all_dirs + [Path(plan.parent)])
    if code == 0:
        return print_recipe_report(plan.parent)
    return code
