"""Launcher command construction: worker commands, the DeepSpeed JSON, submitit parameters, run dirs."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

import pytest
import torch

from rova.config.compose import load_typed
from rova.config.distributed import deepspeed_config
from rova.launch.dispatch import prepare_run_dirs
from rova.launch.slurm import executor_parameters
from rova.launch.workers import processes_per_node, worker_command


def cfg_of(*overrides: str):
    return load_typed(list(overrides))


def test_single_process_runs_the_worker_module(tmp_path):
    cmd = worker_command(cfg_of(), tmp_path)
    assert cmd == [sys.executable, "-m", "rova.worker", str(tmp_path)]


def test_ddp_uses_torchrun_with_rendezvous(tmp_path):
    cmd = worker_command(cfg_of("distributed=ddp", "distributed.nproc_per_node=4"), tmp_path,
                         nnodes=2, node_rank=1, master_addr="node0", master_port=29500)
    assert cmd[1:3] == ["-m", "torch.distributed.run"]
    for part in ("--nnodes=2", "--node_rank=1", "--nproc_per_node=4", "--master_addr=node0", "--master_port=29500"):
        assert part in cmd
    assert cmd[-3:] == ["-m", "rova.worker", str(tmp_path)]


@pytest.mark.parametrize("strategy,stage", [("zero2", 2), ("zero3", 3)])
def test_zero_uses_the_deepspeed_launcher_and_generated_json(tmp_path, strategy, stage):
    cfg = cfg_of(f"distributed={strategy}", "distributed.nproc_per_node=2", "distributed.offload_optimizer=true")
    cmd = worker_command(cfg, tmp_path, master_port=29501)
    assert cmd[1:3] == ["-m", "deepspeed.launcher.runner"]
    assert "--num_gpus=2" in cmd and "--no_local_rank" in cmd and cmd[-3:] == ["--module", "rova.worker", str(tmp_path)]
    ds = deepspeed_config(cfg.distributed)
    assert ds["zero_optimization"]["stage"] == stage
    assert ds["zero_optimization"]["offload_optimizer"]["device"] == "cpu"
    assert ds["train_micro_batch_size_per_gpu"] == "auto"


def test_nproc_defaults(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2")
    assert processes_per_node(cfg_of("distributed=ddp")) == 3
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert processes_per_node(cfg_of("distributed=ddp")) == 2
    assert processes_per_node(cfg_of()) == 1


def test_submitit_parameters_come_from_cluster_config():
    cfg = cfg_of("cluster=slurm", "cluster.partition=gpu", "cluster.account=proj", "cluster.qos=high",
                 "cluster.gpus_per_node=8", "cluster.nodes=2", "cluster.mem_gb=400", "cluster.array_parallelism=4",
                 "+cluster.additional_parameters.constraint=a100", "cluster.setup=[module load cuda]")
    params = executor_parameters(cfg)
    assert params["slurm_partition"] == "gpu" and params["slurm_account"] == "proj" and params["slurm_qos"] == "high"
    assert params["gpus_per_node"] == 8 and params["nodes"] == 2 and params["tasks_per_node"] == 1
    assert params["mem_gb"] == 400 and params["slurm_array_parallelism"] == 4
    assert params["slurm_additional_parameters"] == {"constraint": "a100"}
    assert params["slurm_setup"] == ["module load cuda"]


def test_run_dirs_hold_resolved_config_and_provenance(tmp_path):
    from rova.config.paths import absolutize

    jobs = [["reward.kl_alpha=1"], ["reward.kl_alpha=2"]]
    typed = [absolutize(cfg_of("stage=tgrpo", *j, f"run.output_root={tmp_path}"), tmp_path) for j in jobs]
    dirs = prepare_run_dirs(jobs, typed, now=dt.datetime(2026, 1, 2, 3, 4, 5), multirun=True)
    assert [d.name for d in dirs] == ["0_tgrpo", "1_tgrpo"]
    assert dirs[0].parent == tmp_path / "multirun" / "2026-01-02" / "03-04-05"
    for d, alpha in zip(dirs, (1.0, 2.0)):
        assert f"kl_alpha: {alpha}" in (d / "resolved.yaml").read_text()
        assert f"dir: {d}" in (d / "resolved.yaml").read_text()
        meta = json.loads((d / "meta.json").read_text())
        assert "git_sha" in meta and meta["overrides"] == jobs[dirs.index(d)]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_tiny_grpo_on_cuda_bf16(tmp_path, cache_dir):
    from tests.support.runs import launch, only_run_dir

    proc = launch(tmp_path, cache_dir, "model.dtype=bfloat16", "stage=tgrpo", "data.demo_num_clips=8", "logger=none")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    run_dir = only_run_dir(tmp_path / "outputs")
    assert json.loads((run_dir / "summary.json").read_text())["global_step"] == 4


def test_run_tag_names_the_run_dir(tmp_path):
    from rova.errors import ConfigError
    from rova.config.paths import absolutize

    typed = absolutize(cfg_of("run.tag=baseline", f"run.output_root={tmp_path}"), tmp_path)
    (run_dir,) = prepare_run_dirs([["run.tag=baseline"]], [typed], now=dt.datetime(2026, 1, 2, 3, 4, 5), multirun=False)
    assert run_dir == tmp_path / "grpo" / "2026-01-02" / "03-04-05_baseline"
    with pytest.raises(ConfigError, match="run.tag"):
        cfg_of("run.tag=a/b")


def test_stages_and_training_never_import_the_launcher():
    # Data flow is one-directional (design.md): launch -> run dir -> workers -> stages. Shared pieces such as
    # the DeepSpeed JSON live in rova.config.
    import re

    root = Path(__file__).resolve().parents[2] / "rova"
    offenders = [
        f"{path.relative_to(root.parent)}:{number}"
        for package in ("stages", "training")
        for path in sorted((root / package).rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if re.match(r"\s*(from|import)\s+rova\.launch\b", line)
    ]
    assert not offenders, offenders


def test_zero_multi_node_command_starts_this_nodes_ranks(tmp_path):
    """The DeepSpeed launcher refused `--num_nodes=2 --no_ssh` without a hostfile ("Num nodes is >1 but no extra
    nodes available via hostfile"), so a multi-node ZeRO run never started; and without a hostfile it replaces
    --master_addr with 127.0.0.1. Runs the launcher part of the real command (only the module it starts is a
    probe that prints its rank environment) for the second node of two, one process per node."""
    import os
    import subprocess

    cfg = cfg_of("distributed=zero2", "distributed.nproc_per_node=1")
    cmd = worker_command(cfg, tmp_path, nnodes=2, node_rank=1, master_addr="10.11.12.13", master_port=29533)
    cmd[cmd.index("rova.worker")] = "tests.support.rank_env"
    repo = Path(__file__).resolve().parents[2]
    env = dict(os.environ, PYTHONPATH=str(repo))
    proc = subprocess.run(cmd, cwd=repo, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (line,) = [ln for ln in proc.stdout.splitlines() if ln.startswith("RANK_ENV ")]
    assert json.loads(line.split(" ", 1)[1]) == {
        "RANK": "1", "LOCAL_RANK": "0", "WORLD_SIZE": "2", "MASTER_ADDR": "10.11.12.13", "MASTER_PORT": "29533",
    }
