"""Command lines that start N worker processes (torchrun for DDP, the DeepSpeed launcher for ZeRO).

Workers read `resolved.yaml` from the run dir (`python -m rova.worker RUN_DIR`): no re-composition and no
Hydra argument parsing in workers, so launcher-injected arguments such as `--local_rank` never reach Hydra.
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

from rova.config.schema import RootConfig


def visible_gpus() -> int:
    """GPUs this process may use, without importing torch (CUDA_VISIBLE_DEVICES, else nvidia device nodes)."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return len([d for d in env.split(",") if d.strip() and d.strip() != "-1"])
    return len([p for p in Path("/dev").glob("nvidia[0-9]*")])


def processes_per_node(cfg: RootConfig) -> int:
    if cfg.distributed.name == "none":
        return 1
    if cfg.distributed.nproc_per_node is not None:
        return cfg.distributed.nproc_per_node
    count = visible_gpus() or 2
    size = cfg.distributed.sequence_parallel
    if count % size:  # nproc_per_node set is checked at compose time; here the visible GPUs decide
        from rova.errors import ConfigError

        raise ConfigError("distributed.sequence_parallel", f"{size} must divide the {count} processes of a node (one "
                          "per visible GPU): set distributed.nproc_per_node or another sequence_parallel")
    return count


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def worker_command(
    cfg: RootConfig,
    run_dir: Path,
    *,
    nnodes: int = 1,
    node_rank: int = 0,
    master_addr: str = "127.0.0.1",
    master_port: int | None = None,
) -> list[str]:
    """The command a node runs to start its workers (all nodes run the same command with their own rank).

    A multi-node ZeRO command also writes the DeepSpeed launcher's hostfile into run_dir (write_deepspeed_hostfile).
    """
    port = master_port or cfg.distributed.master_port or free_port()
    nproc = processes_per_node(cfg)
    worker = ["-m", "rova.worker", str(run_dir)]
    if cfg.distributed.name == "none":
        return [sys.executable, *worker]
    if cfg.distributed.name == "ddp":
        return [
            sys.executable, "-m", "torch.distributed.run",
            f"--nnodes={nnodes}", f"--node_rank={node_rank}", f"--nproc_per_node={nproc}",
            f"--master_addr={master_addr}", f"--master_port={port}",
            *worker,
        ]
    # ZeRO-2/3: the DeepSpeed launcher (it sets RANK/LOCAL_RANK/WORLD_SIZE and passes --local_rank, which the
    # worker ignores). `--no_local_rank` keeps argv clean; `--module` runs rova.worker as a module.
    launcher = [sys.executable, "-m", "deepspeed.launcher.runner"]
    if nnodes > 1:
        # Every node starts its own ranks (--no_ssh), but the launcher still takes the node count and each node's
        # slots from a hostfile: without one it refuses --num_nodes > 1 and replaces --master_addr with 127.0.0.1.
        hostfile = write_deepspeed_hostfile(run_dir, nnodes, nproc)
        launcher += [f"--hostfile={hostfile}", f"--num_nodes={nnodes}", f"--node_rank={node_rank}", "--no_ssh"]
    return [
        *launcher,
        f"--num_gpus={nproc}", f"--master_addr={master_addr}", f"--master_port={port}",
        "--no_local_rank", "--module", "rova.worker", str(run_dir),
    ]


def write_deepspeed_hostfile(run_dir: Path, nnodes: int, nproc: int) -> Path:
    """The hostfile of a multi-node DeepSpeed launch: `nnodes` lines of `nproc` slots, in node-rank order.

    With --no_ssh the launcher never contacts these hosts; it reads only their number and slots (a rank's global
    number is its node's offset plus its local rank), so the names are placeholders. Every node writes the same
    text (atomically) into the shared run dir.
    """
    from rova.launch.rundir import DEEPSPEED_HOSTFILE
    from rova.utils.io import atomic_write_text

    lines = [f"node{rank} slots={nproc}" for rank in range(nnodes)]
    return atomic_write_text(Path(run_dir) / DEEPSPEED_HOSTFILE, "\n".join(lines) + "\n")
