"""The config platform: every option composes; bad values fail fast with the key named, before a run dir."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from rova.errors import ConfigError
from rova.config.compose import compose, conf_dir, load, load_typed, validate

REPO = Path(__file__).resolve().parents[2]
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
    ("experiment", "rova_recipe"): ["data.train_file=/data/Video-R1-260k.json"],
    ("experiment", "videochat_r1_7b"): ["data.train_file=/data/videochat_r1.json"],
    ("experiment", "temporal_r1_3b"): ["data.train_file=/data/temporal_r1.json"],
    ("experiment", "dapo_7b"): ["data.train_file=/data/Video-R1-260k.json"],
    ("experiment", "tw_grpo_7b"): ["data.train_file=/data/Video-R1-260k.json"],
    ("experiment", "deepvideo_r1_7b"): ["data.train_file=/data/Video-R1-260k.json"],
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
    typed = load_typed(["stage=tgrpo", "corruption=weather", "reward.kl_alpha=2"])
    assert typed.reward.kl_alpha == 2.0
    assert typed.corruption.p_weather > 0


def test_tgrpo_branch_sizes_default_to_half_the_group():
    typed = load_typed(["stage=tgrpo", "corruption=rova", "stage.num_generations=6", "stage.per_device_train_batch_size=6"])
    assert typed.tgrpo.shuffled_generations == 3
    assert typed.tgrpo.corrupted_generations == 3


@pytest.mark.parametrize("group,expected", [(2, 2), (3, 2), (4, 2), (5, 2), (8, 4)])
def test_corrupted_branch_is_never_a_group_of_one(group, expected):
    # Regression: the default was G // 2, i.e. 1 for G = 2 or 3: a trained group of one completion has a
    # group-normalised advantage of 0 (no gradient) while its tokens still count in the loss normaliser.
    typed = load_typed(["stage=tgrpo", f"stage.num_generations={group}", f"stage.per_device_train_batch_size={group * 2}",
                     "stage.steps_per_generation=1"])
    assert typed.tgrpo.corrupted_generations == expected
    with pytest.raises(ConfigError, match="tgrpo.corrupted_generations"):
        load(["stage=tgrpo", f"stage.num_generations={group}", "tgrpo.corrupted_generations=1"])


def test_stage_behaviour_follows_config_not_the_stage_name():
    plain = load_typed([])
    assert plain.stage.name == "grpo" and plain.tgrpo.branches == ["clean"] and plain.memory.enabled is False
    tgrpo = load_typed(["stage=tgrpo"])
    assert tgrpo.tgrpo.branches == ["clean", "shuffled", "corrupted"] and tgrpo.memory.enabled is False
    memory = load_typed(["stage=memory"])
    assert memory.tgrpo.branches == ["clean", "shuffled", "corrupted"] and memory.memory.enabled is True
    # The corrupted-branch rules follow tgrpo.branches, whatever the stage is called.
    with pytest.raises(ConfigError, match="^corruption"):
        load(["tgrpo.branches=[clean,corrupted]"])  # stage=grpo, corruption=none
    assert load(["stage=tgrpo", "corruption=none", "reward=video_r1", "tgrpo.branches=[clean,shuffled]"])
    schema_text = (REPO / "rova" / "config" / "schema.py").read_text()
    assert "stage.name in" not in schema_text and "stage.name ==" not in schema_text and "RL_STAGES" not in schema_text


def test_stage_names_and_rules_come_from_the_registry(monkeypatch):
    from rova.config import stage as registry

    with pytest.raises(ConfigError, match="allowed: " + ", ".join(registry.stage_names())):
        load(["stage.name=distill"])
    # A registered stage that trains no policy groups: the RL group-size rule does not apply to it.
    spec = registry.StageSpec("distill", "rova.stages.sft", "test-only", (), {}, (), "summary.json")
    monkeypatch.setitem(registry.STAGES, "distill", spec)
    assert load_typed(["stage.name=distill", "stage.per_device_train_batch_size=3"]).stage.name == "distill"
    with pytest.raises(ConfigError, match="memory.enabled"):
        load(["stage.name=distill", "memory.enabled=true"])


def test_shuffle_mode_key():
    assert load_typed([]).tgrpo.shuffle == "uniform"  # Video-R1: a uniformly random permutation
    assert load_typed(["tgrpo.shuffle=derangement"]).tgrpo.shuffle == "derangement"


def test_vllm_importance_sampling_keys_match_trl():
    import dataclasses

    from trl import GRPOConfig

    from rova.config.rollout import RolloutConfig

    ours = {f.name: f.default for f in dataclasses.fields(RolloutConfig) if "importance_sampling" in f.name}
    theirs = {f.name: f.default for f in dataclasses.fields(GRPOConfig)}
    assert len(ours) == 4 and all(theirs[name] == default for name, default in ours.items()), ours
    typed = load_typed(["rollout.vllm_importance_sampling_mode=token_truncate", "rollout.vllm_importance_sampling_clip_min=0.5"])
    assert typed.rollout.vllm_importance_sampling_clip_min == 0.5
    for bad, key in [
        (["rollout.vllm_importance_sampling_mode=token"], "rollout.vllm_importance_sampling_mode"),
        (["rollout.vllm_importance_sampling_clip_min=4"], "rollout.vllm_importance_sampling_clip_min"),
        (["rollout.vllm_importance_sampling_clip_max=0"], "rollout.vllm_importance_sampling_clip_max"),
        (["rollout.vllm_importance_sampling_mode=sequence_truncate", "rollout.vllm_importance_sampling_clip_max=null"],
         "rollout.vllm_importance_sampling_clip_max"),
    ]:
        with pytest.raises(ConfigError, match=key):
            load(bad)


BAD_OVERRIDES = [
    (["reward.kl_alpa=2"], "reward.kl_alpa"),
    (["reward.kl_alpha=-1"], "reward.kl_alpha"),
    (["reward.kl_alpha=abc"], "reward.kl_alpha"),
    (["reward.w_acc=-0.5"], "reward.w_acc"),
    (["reward.kl_estimator=median"], "reward.kl_estimator"),
    (["stage.num_generations=1"], "stage.num_generations"),
    (["stage.per_device_train_batch_size=3"], "stage.per_device_train_batch_size"),
    (["stage.learning_rate=0"], "stage.learning_rate"),
    (["objective.loss_type=ppo"], "objective.loss_type"),
    (["stage.name=distill"], "stage.name"),
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
    (["reward.fallback_whole_output=true"], "reward.fallback_whole_output"),  # removed: it was never read
    (["tgrpo.corrupted_generations=1"], "tgrpo.corrupted_generations"),
    (["tgrpo.shuffle=reverse"], "tgrpo.shuffle"),
    (["rollout.vllm_importance_sampling_mode=token"], "rollout.vllm_importance_sampling_mode"),
]
# Hydra's own errors are multi-line; the launcher rewrites each into one line naming the key.
HYDRA_ERRORS = [
    (["stage.num_generations=1.5"], "stage.num_generations"),  # type conversion while merging the override
    (["+reward.kl_alpha=2"], "reward.kl_alpha"),  # '+' on a key that exists
    (["+reward.kl_alpa=2"], "reward.kl_alpa"),  # '+' on a key that does not
    (["reward.kl_alpha=[1,2"], "reward.kl_alpha"),  # grammar error (Hydra names no override)
    (["data.prompt.question=q{Question}"], "data.prompt.question"),  # braces need quotes
    (["cluster.additional_parameters.constraint=a100"], "cluster.additional_parameters.constraint"),
    (["~reward.kl_alpha"], "reward.kl_alpha"),
    (["stage=nope"], "stage"),
]


@pytest.mark.parametrize("overrides,key", BAD_OVERRIDES, ids=[" ".join(o) for o, _ in BAD_OVERRIDES])
def test_bad_override_raises_config_error_naming_the_key(overrides, key):
    with pytest.raises(ConfigError) as info:
        load(overrides)
    assert key in str(info.value), str(info.value)


@pytest.mark.parametrize("overrides,key", HYDRA_ERRORS, ids=[" ".join(o) for o, _ in HYDRA_ERRORS])
def test_hydra_errors_become_one_config_error_naming_the_key(overrides, key):
    with pytest.raises(ConfigError) as info:
        load(overrides)
    message = str(info.value)
    assert message.startswith(key) and "\n" not in message, message


def test_typo_suggests_the_right_key():
    for override in ("reward.kl_alpa=2", "+reward.kl_alpa=2"):
        with pytest.raises(ConfigError) as info:
            load([override])
        assert "did you mean reward.kl_alpha" in str(info.value)


def test_composed_config_is_the_schema():
    import dataclasses

    from omegaconf import OmegaConf

    from rova.config.schema import RootConfig

    cfg = compose([])
    assert OmegaConf.get_type(cfg) is RootConfig
    defaults = RootConfig()
    for section in dataclasses.fields(RootConfig):
        assert set(cfg[section.name]) == {f.name for f in dataclasses.fields(getattr(defaults, section.name))}


def _leaves(node: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in node.items():
        if isinstance(value, dict) and value:
            out.update(_leaves(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def test_config_yaml_is_a_defaults_list_and_options_are_deltas_over_the_schema():
    import yaml
    from omegaconf import OmegaConf

    from rova.config.schema import RootConfig

    assert list(yaml.safe_load((conf_dir() / "config.yaml").read_text())) == ["defaults"]
    schema = OmegaConf.to_container(OmegaConf.structured(RootConfig))
    for group, option in all_options():
        text = (conf_dir() / group / f"{option}.yaml").read_text()
        assert text.startswith("#"), f"{group}/{option}.yaml: first line is a comment saying what the preset is"
        if "@package _global_" in text:
            continue  # stage presets that re-default other groups, experiments, debug modes
        body = {k: v for k, v in (yaml.safe_load(text) or {}).items() if k != "defaults"}
        for key, value in _leaves(body).items():
            default = schema[group]
            for part in key.split("."):
                assert isinstance(default, dict) and part in default, f"{group}/{option}.yaml: {key} is not a schema key"
                default = default[part]
            if key != "name":  # every preset names itself
                assert value != default, f"{group}/{option}.yaml: {key}={value!r} repeats the schema default"


LAUNCHER_CASES = BAD_OVERRIDES[:15] + HYDRA_ERRORS[:4]


@pytest.mark.parametrize("overrides,key", LAUNCHER_CASES, ids=[" ".join(o) for o, _ in LAUNCHER_CASES])
def test_launcher_exits_2_with_one_line_and_no_run_dir(tmp_path, monkeypatch, capsys, overrides, key):
    """launch.py's main, in this process: exit status 2, one stderr line naming the key, nothing written."""
    from rova.cli import main

    out_root = tmp_path / "outputs"
    monkeypatch.chdir(tmp_path)
    assert main([*overrides, f"run.output_root={out_root}"]) == 2
    captured = capsys.readouterr()
    lines = [line for line in captured.err.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and key in lines[0], captured.err
    assert not out_root.exists(), "a config error must not create a run dir"


@pytest.mark.parametrize("overrides,key", [BAD_OVERRIDES[0], HYDRA_ERRORS[0]], ids=["schema", "hydra"])
def test_launch_py_process_exits_nonzero_fast_with_one_line(tmp_path, overrides, key):
    """The same through a fresh `python launch.py`: the interpreter's exit status and stderr, and no heavy import."""
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
        "import sys; from rova.cli import main; "
        "rc = main(['--cfg', 'resolved']); "
        "heavy = [m for m in ('torch', 'transformers', 'trl', 'deepspeed', 'cv2', 'albumentations') if m in sys.modules]; "
        "print('HEAVY', heavy); sys.exit(rc)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "HEAVY []" in proc.stdout, proc.stdout[-500:]


def test_help_lists_groups_and_sweeps(capsys):
    from rova.cli import main

    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    for word in ("stage", "corruption", "kl_alpha", "cluster"):
        assert word in out


def test_cfg_job_prints_composed_config(capsys):
    from rova.cli import main

    assert main(["--cfg", "job", "stage=tgrpo", "corruption=weather"]) == 0
    assert "name: tgrpo" in capsys.readouterr().out


def test_resolved_config_round_trips_through_the_schema():
    from omegaconf import OmegaConf

    resolved, typed = load(["stage=memory", "corruption=rova", "reward=rova"])
    again, typed_again = validate(OmegaConf.create(OmegaConf.to_yaml(resolved)))
    assert typed_again == typed


def test_multirun_expansion_and_sweep_files():
    from rova.cli import plan_jobs

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
    from rova.cli import plan_jobs
    from rova.launch.sweeps import available_sweeps

    for name in available_sweeps():
        for job in plan_jobs([f"+sweep={name}"], multirun=True):
            load(job)


def test_prompt_wording_is_config():
    typed = load_typed(["data.prompt.system=You watch videos carefully."])  # a schema key: no '+' needed
    assert typed.data.prompt.system == "You watch videos carefully."
    assert "{Question}" in typed.data.prompt.question  # Video-R1's wording by default
    typed = load(["data.prompt.question='Q: {Question}'", "data.prompt.type_templates.numerical=N",
                  "data.prompt.options_header=Choices:"])[1]
    assert typed.data.prompt.question == "Q: {Question}" and typed.data.prompt.type_templates["numerical"] == "N"
    assert typed.data.prompt.options_header == "Choices:"
    with pytest.raises(ConfigError, match="data.prompt.question: must contain"):
        load(["data.prompt.question=no placeholder"])
    with pytest.raises(ConfigError, match="data.prompt.question: is a schema key: set it without '\\+'"):
        load(["+data.prompt.question=x"])


def test_prompt_config_reaches_the_training_rows(demo_file, tmp_path):
    from rova.training.dataset import load_training_data

    data_cfg = load_typed([f"data.train_file={demo_file}", "data.build_demo=false", "data.prompt.system=SYS"]).data
    row = load_training_data(data_cfg, 28, tmp_path).dataset[0]
    assert row["prompt"][0]["role"] == "system" and row["prompt"][0]["content"][0]["text"] == "SYS"


