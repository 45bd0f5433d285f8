"""A fresh `python launch.py` process runs every stage: what the in-process runs of the other tests cannot show.

Every other stage test runs launch.py's `main` in the pytest process (tests/support/runs.py). This smoke
starts the real entry point as a user does, once, as a multirun over every registered stage (`-m
stage=grpo,tgrpo,...`: one process, the stages one after the other, each in its own run dir), and checks
the exit status, each run dir's done file and the console lines. An import that only works because pytest
imported it first, a stage that needs state the test process set up, or output that only reaches a real
stdout shows up here. One process for all stages, not one per stage: the interpreter's start and the
torch / transformers / TRL imports are paid once (about 10 s each time on 2 CPU cores).
"""

from __future__ import annotations

import re

from rova.config.stage import STAGES, get_spec
from tests.support.runs import launch_subprocess

# The smallest run of each stage; keys a stage does not read are ignored by it.
SMALL = ("stage.max_steps=1", "data.demo_num_clips=8", "logger=none", "cot.num_samples=2", "cot.max_new_tokens=8",
         "select.num_samples=2", "select.max_new_tokens=8",
         "benchmark.demo_num_clips=4", "eval.max_new_tokens=8", "eval.corruptions=[fog]", "eval.severities=[3]")


def test_launch_py_runs_every_stage_in_a_fresh_process(tmp_path, cache_dir):
    stages = list(STAGES)
    proc = launch_subprocess(tmp_path, cache_dir, "-m", f"stage={','.join(stages)}", *SMALL, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    announced = re.findall(r"^\[rova\] run dir: (\S+)$", proc.stdout, flags=re.M)
    assert len(announced) == len(stages), proc.stdout[-3000:]
    for index, stage in enumerate(stages):
        run_dir = next(d for d in announced if d.endswith(f"/{index}_{stage}"))
        assert (tmp_path / run_dir).joinpath(get_spec(stage).done).exists(), f"{stage}: no {get_spec(stage).done}"
    for stage in ("grpo", "tgrpo", "memory", "sft"):
        assert f"[rova] done: {stage}, 1 steps" in proc.stdout
