"""The `cluster.*` settings: where the job runs (this machine, or SLURM through submitit)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from rova.config.checks import _choice, _positive
from rova.errors import ConfigError


@dataclass
class ClusterConfig:
    """Where the job runs: this machine, or SLURM through submitit."""

    name: str = "local"
    partition: Optional[str] = None
    account: Optional[str] = None
    qos: Optional[str] = None
    time_min: int = 60
    nodes: int = 1
    gpus_per_node: int = 0
    cpus_per_task: int = 2
    mem_gb: Optional[int] = None
    array_parallelism: int = 16
    setup: list[str] = field(default_factory=list)
    additional_parameters: dict[str, Any] = field(default_factory=dict)
    wait: bool = False
    max_requeues: int = 3
    signal_delay_s: int = 120

    def __post_init__(self) -> None:
        _choice("cluster.name", self.name, ("local", "slurm"))
        _positive("cluster.time_min", self.time_min)
        _positive("cluster.nodes", self.nodes)
        _positive("cluster.gpus_per_node", self.gpus_per_node, allow_zero=True)
        _positive("cluster.cpus_per_task", self.cpus_per_task)
        if self.mem_gb is not None:
            _positive("cluster.mem_gb", self.mem_gb)
        _positive("cluster.array_parallelism", self.array_parallelism)
        _positive("cluster.max_requeues", self.max_requeues, allow_zero=True)
        _positive("cluster.signal_delay_s", self.signal_delay_s, allow_zero=True)
        if self.name == "local" and self.nodes > 1:
            raise ConfigError("cluster.nodes", "multi-node runs need cluster=slurm")
