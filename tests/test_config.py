"""The config platform: every option composes; bad values fail fast with the key named, before a run dir."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from rova.errors import ConfigError
from rova.launch.compose import compose, conf_dir, load, validate

REPO = Path(__file__).resolve().parents[1]
# Options that need a value only the user can give (their own data file); the test supplies one.
REQUIRED = {("data", "video_r1"): ["data.train_file=/data/Video-R1-260k.json"]}
# Options whose cross-field rules need a companion choice (e.g. the corrupted branch needs corruptions).
COMPANIONS = {
    ("stage", "tgrpo"): ["corruption=rova"],
    ("stage", "memory"): ["corruption=rova"],
    ("reward", "rova"): ["corruption=rova"],
    ("rollout", "vllm"): ["model=qwen2_5_vl_7b"],
    ("experiment", "rova_7b"): ["data.train_file=/data/Video-R1-260k.json"],
    ("experiment", "video_r1_7b"): ["data.train_file=/data/Video-R1-260k.json"],
}


def all_options() -> list[tuple[str, str]]:
    return [
        (group.name, option.stem)
        for group in sorted(p for p in conf_dir().iterdir() if p.is_dir())
        for option in sorted(group.glob("*.yaml"))
    ]


def test_every_group_has_options():
    groups = {g for g, _ in all_options()}
    assert {"stage", "model", "data", "corruption", "reward", "rollout", "distributed", "cluster", "logger",
            "experiment", "debug"} <= groups


@pytest.mark.parametrize("group,option", all_options())
def test_every_option_composes_and_validates(group, option):
    overrides = [f"{group}={option}", *REQUIRED.get((group, option), []), *COMPANIONS.get((group, option), [])]
    resolved, typed = load(overrides)
    if group not in ("experiment", "debug") and hasattr(getattr(typed, group), "name"):
        assert getattr(typed, group).name == option
    assert resolved.stage.name == typed.stage.name


def test_kl_alpha_reaches_the_reward_config():
    _, typed = load(["stage=tgrpo", "corruption=weather", "reward.kl_alpha=2"])
    assert typed.reward.kl_alpha == 2.0
    assert typed.corruption.p_weather > 0


def test_tgrpo_branch_sizes_default_to_half_the_group():
    _, typed = load(["stage=tgrpo", "corruption=rova", "stage.num_generations=6", "stage.per_device_train_batch_size=6"])
    assert typed.tgrpo.shuffled_generations == 3
    assert typed.tgrpo.corrupted_generations == 3


BAD_OVERRIDES = [
    (["reward.kl_alpa=2"], "reward.kl_alpa"),
    (["reward.kl_alpha=-1"], "reward.kl_alpha"),
    (["reward.kl_alpha=abc"], "reward.kl_alpha"),
    (["reward.w_acc=-0.5"], "reward.w_acc"),
    (["reward.kl_estimator=median"], "reward.kl_estimator"),
    (["stage.num_generations=1"], "stage.num_generations"),
    (["stage.per_device_train_batch_size=3"], "stage.per_device_train_batch_size"),
    (["stage.learning_rate=0"], "stage.learning_rate"),
    (["stage.loss_type=ppo"], "stage.loss_type"),
    (["stage.name=sft"], "stage.name"),
    (["data.fps=0"], "data.fps"),
    (["data.fps=-2"], "data.fps"),
    (["data.max_frames=2", "data.min_frames=4"], "data.max_frames"),
    (["data.backend=opencv"], "data.backend"),
    (["corruption.p_weather=1.5"], "corruption.p_weather"),
    (["corruption=rova", "corruption.p_weather=0.9"], "corruption.p_"),
    (["model=nonexistent"], "model"),
    (["model.dtype=int8"], "model.dtype"),
    (["distributed.offload_param=true"], "distributed.offload_param"),
    (["distributed.nproc_per_node=0"], "distributed.nproc_per_node"),
    (["cluster.nodes=2"], "cluster.nodes"),
    (["logger.mode=loud"], "logger.mode"),
    (["memory.replay_frac=2"], "memory.replay_frac"),
    (["tgrpo.branches=[shuffled]"], "tgrpo.branches"),
    (["stage=tgrpo", "corruption=none"], "corruption"),
    (["data=video_r1"], "data.train_file"),
    (["stage.max_steps=lots"], "stage.max_steps"),
]


@pytest.mark.parametrize("overrides,key", BAD_OVERRIDES, ids=[" ".join(o) for o, _ in BAD_OVERRIDES])
def test_bad_override_raises_config_error_naming_the_key(overrides, key):
    with pytest.raises(ConfigError) as info:
        load(overrides)
    assert key in str(info.value), str(info.value)


def test_typo_suggests_the_right_key():
    with pytest.raises(ConfigError) as info:
        load(["reward.kl_alpa=2"])
    assert "did you mean reward.kl_alpha" in str(info.value)


@pytest.mark.parametrize("overrides,key", BAD_OVERRIDES[:15], ids=[" ".join(o) for o, _ in BAD_OVERRIDES[:15]])
def test_launcher_exits_nonzero_fast_with_one_line_and_no_run_dir(tmp_path, overrides, key):
    out_root = tmp_path / "outputs"
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, str(REPO / "launch.py"), *overrides, f"run.output_root={out_root}"],
        capture_output=True, text=True, cwd=tmp_path, timeout=60,
    )
    elapsed = time.monotonic() - start
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and key in lines[0], proc.stderr
    assert not out_root.exists(), "a config error must not create a run dir"
    # Not a timing assertion on the run, only a guard against heavy imports on the launch path.
    assert elapsed < 20, f"config error took {elapsed:.1f}s: heavy imports on the launch path?"


def test_launch_path_imports_no_heavy_modules():
    code = (
        "import sys; from rova.launch.cli import main; "
        "rc = main(['--cfg', 'resolved']); "
        "heavy = [m for m in ('torch', 'transformers', 'trl', 'deepspeed', 'cv2', 'albumentations') if m in sys.modules]; "
        "print('HEAVY', heavy); sys.exit(rc)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "HEAVY []" in proc.stdout, proc.stdout[-500:]


def test_help_lists_groups_and_sweeps():
    proc = subprocess.run([sys.executable, str(REPO / "launch.py"), "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    for word in ("stage", "corruption", "kl_alpha", "cluster"):
        assert word in proc.stdout


def test_cfg_job_prints_composed_config():
    proc = subprocess.run(
        [sys.executable, str(REPO / "launch.py"), "--cfg", "job", "stage=tgrpo", "corruption=weather"],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "name: tgrpo" in proc.stdout


def test_resolved_config_round_trips_through_the_schema():
    from omegaconf import OmegaConf

    resolved, typed = load(["stage=memory", "corruption=rova", "reward=rova"])
    again, typed_again = validate(OmegaConf.create(OmegaConf.to_yaml(resolved)))
    assert typed_again == typed


def test_multirun_expansion_and_sweep_files():
    from rova.launch.cli import plan_jobs

    jobs = plan_jobs(["corruption=weather", "corruption.p_weather=0.1,0.25,0.5"], multirun=True)
    assert len(jobs) == 3 and all("corruption=weather" in j for j in jobs)
    jobs = plan_jobs(["+sweep=kl_alpha"], multirun=True)
    assert sorted(j[-1] for j in jobs) == sorted(f"reward.kl_alpha={v}" for v in ("0.5", "1.0", "2.0", "3.0"))
    with pytest.raises(ConfigError):
        plan_jobs(["corruption.p_weather=0.1,0.2"], multirun=False)
    with pytest.raises(ConfigError) as info:
        plan_jobs(["+sweep=nope"], multirun=True)
    assert "kl_alpha" in str(info.value)


def test_every_sweep_file_validates():
    from rova.launch.cli import plan_jobs
    from rova.launch.sweeps import available_sweeps

    for name in available_sweeps():
        for job in plan_jobs([f"+sweep={name}"], multirun=True):
            load(job)


def test_prompt_wording_is_config():
    _, typed = load(["+data.prompt.system=You watch videos carefully."])
    assert typed.data.prompt.system == "You watch videos carefully."
    assert "{Question}" in typed.data.prompt.question  # Video-R1's wording by default
    with pytest.raises(ConfigError, match="data.prompt.question"):
        load(["+data.prompt.question=no placeholder"])
    with pytest.raises(ConfigError, match=r"\+data.prompt.question"):
        load(["data.prompt.question=x"])  # exists in the schema, not in the YAML: the message says how


def test_prompt_config_reaches_the_training_rows(demo_file, tmp_path):
    from rova.training.dataset import load_training_data

    data_cfg = load([f"data.train_file={demo_file}", "data.build_demo=false", "+data.prompt.system=SYS"])[1].data
    row = load_training_data(data_cfg, 28, tmp_path).dataset[0]
    assert row["prompt"][0]["role"] == "system" and row["prompt"][0]["content"][0]["text"] == "SYS"
