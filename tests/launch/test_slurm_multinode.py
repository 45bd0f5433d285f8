"""Slow tier: `cluster=slurm cluster.nodes=2` through rova's real submit path, on a real SLURM cluster of two
compute nodes on this machine (n1 and n2, each its own slurmd: SLURM's multiple-slurmd mode, which Debian's
slurmd is built with; scripts/local_slurm.sh with ROVA_SLURM_NODES=2). One SLURM task per node starts that node's
workers (rova.launch.slurm.SlurmRun); they rendezvous on the first node and train as one world of two.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rova.launch.slurm import first_node

from tests.support.local_slurm import TWO_NODES, TWO_NODES_DIR, make_local_slurm_fixture
from tests.support.runs import launch, only_run_dir

pytestmark = pytest.mark.slow

local_slurm_two_nodes = make_local_slurm_fixture("local_slurm_two_nodes", scope="module",
                                                 state_dir=TWO_NODES_DIR, knobs=TWO_NODES)


def test_the_rendezvous_host_is_the_first_nodes_address(local_slurm_two_nodes, monkeypatch):
    # NodeName n1 resolves nowhere (NodeHostname=localhost, NodeAddr=127.0.0.1): workers told to meet at "n1"
    # retried 'gai error: Name or service not known' until the job's time limit.
    monkeypatch.setenv("SLURM_JOB_NODELIST", "n[1-2]")
    assert first_node() == "127.0.0.1"


def test_two_node_job_trains_as_one_world_of_two(tmp_path, cache_dir, local_slurm_two_nodes):
    proc = launch(tmp_path, cache_dir, "cluster=slurm", "cluster.nodes=2", "cluster.wait=true", "cluster.time_min=10",
                  "distributed=ddp", "distributed.nproc_per_node=1", "logger=none", "data.demo_num_clips=8",
                  "stage.max_steps=2", "stage.save_steps=100", timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:] + local_slurm_two_nodes.diagnostics()
    run_dir = only_run_dir(tmp_path / "outputs")
    assert json.loads((run_dir / "summary.json").read_text())["global_step"] == 2
    job_id = json.loads((run_dir / "slurm_job.json").read_text())["job_id"]
    for node in (0, 1):  # one task per node, each started its node's worker: ranks 0 and 1 of 2
        out = Path(run_dir / "slurm" / f"{job_id}_{node}_log.out").read_text()
        assert f"node={node}(2)" in out and f"[rova] rank {node}: 2 processes, DistributedType.MULTI_CPU" in out, out
    steps = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    steps = [m for m in steps if "loss" in m]
    assert [m["step"] for m in steps] == [1, 2]
    assert all(m["branch/clean_completions"] == 8 for m in steps)  # the groups of both nodes' workers
