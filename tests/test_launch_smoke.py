"""One fresh `python launch.py` process per stage: what the in-process runs of the other tests cannot show.

Every other stage test runs launch.py's `main` in the pytest process (tests/support/runs.py). These smokes
start the real entry point as a user does, for each registered stage, and check the exit status, the run
dir's done file and the console's closing lines: an import that only works because pytest imported it
first, a stage that needs state the test process set up, or output that only reaches a real stdout would
show up here.
"""

from __future__ import annotations

import pytest

from rova.config.stage import STAGES, get_spec
from tests.support.runs import launch_subprocess, only_run_dir

# The smallest run of each stage (the default run is the demo: GRPO on the tiny model and the demo clips).
SMOKE = {
    "grpo": ("stage.max_steps=1", "data.demo_num_clips=8", "logger=wandb"),
    "tgrpo": ("stage=tgrpo", "stage.max_steps=1", "data.demo_num_clips=8", "logger=none"),
    "memory": ("stage=memory", "stage.max_steps=1", "data.demo_num_clips=8", "logger=none"),
    "sft": ("stage=sft", "stage.max_steps=1", "data.demo_num_clips=8", "logger=none"),
    "cot": ("stage=cot", "data.demo_num_clips=4", "cot.num_samples=2", "cot.max_new_tokens=8", "logger=none"),
    "eval": ("stage=eval", "benchmark.demo_num_clips=4", "eval.max_new_tokens=8", "eval.corruptions=[fog]",
             "eval.severities=[3]", "logger=none"),
}


def test_every_stage_has_a_smoke():
    assert set(SMOKE) == set(STAGES)


@pytest.mark.parametrize("stage", list(SMOKE))
def test_launch_py_runs_the_stage_in_a_fresh_process(stage, tmp_path, cache_dir):
    proc = launch_subprocess(tmp_path, cache_dir, *SMOKE[stage])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    run_dir = only_run_dir(tmp_path / "outputs")
    assert (run_dir / get_spec(stage).done).exists()
    assert f"[rova] run dir: {run_dir}" in proc.stdout
    if stage == "grpo":  # the default demo: wandb offline, and the console ends with where the curves are
        assert any(p.name.startswith("offline-run-") for p in (run_dir / "wandb").iterdir())
        assert proc.stdout.strip().splitlines()[-1].endswith(str(run_dir / "rewards.png"))
