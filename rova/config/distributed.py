"""The `distributed.*` settings: how many worker processes, and which strategy (DDP via torchrun, ZeRO via the
DeepSpeed launcher); and the DeepSpeed JSON generated from them (`deepspeed_config`).

The JSON lives in rova.config (not rova.launch) so that stages and workers can build it without importing the
launcher; its batch sizes are left "auto" so they follow the stage.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from rova.config.checks import _choice, _positive
from rova.errors import ConfigError


@dataclass
class DistributedConfig:
    """How many worker processes, and which strategy (DDP via torchrun, ZeRO via the DeepSpeed launcher)."""

    name: str = "none"
    nproc_per_node: Optional[int] = None
    offload_optimizer: bool = False
    offload_param: bool = False
    backend: str = "auto"
    master_port: Optional[int] = None
    # Ranks per sequence-parallel group (DeepSpeed Ulysses; rova.models.sequence_parallel): 1 = off.
    sequence_parallel: int = 1

    def __post_init__(self) -> None:
        _choice("distributed.name", self.name, ("none", "ddp", "zero2", "zero3"))
        if self.nproc_per_node is not None:
            _positive("distributed.nproc_per_node", self.nproc_per_node)
        _choice("distributed.backend", self.backend, ("auto", "nccl", "gloo"))
        if self.offload_param and self.name != "zero3":
            raise ConfigError("distributed.offload_param", "parameter offload needs distributed=zero3")
        if self.offload_optimizer and self.name not in ("zero2", "zero3"):
            raise ConfigError("distributed.offload_optimizer", "optimizer offload needs distributed=zero2 or zero3")
        _positive("distributed.sequence_parallel", self.sequence_parallel)
        if self.sequence_parallel > 1:
            if self.name == "none":
                raise ConfigError("distributed.sequence_parallel", f"{self.sequence_parallel} ranks per sequence need "
                                  "several processes: use distributed=ddp, zero2 or zero3")
            if self.nproc_per_node is not None and self.nproc_per_node % self.sequence_parallel:
                raise ConfigError("distributed.sequence_parallel", f"{self.sequence_parallel} must divide "
                                  f"distributed.nproc_per_node ({self.nproc_per_node}): a sequence-parallel group's "
                                  "ranks sit on one node")
        if self.master_port is not None and not 1024 <= self.master_port <= 65535:
            raise ConfigError("distributed.master_port", f"got {self.master_port}; must be in [1024, 65535]")


def deepspeed_config(cfg: DistributedConfig) -> dict:
    stage = {"zero2": 2, "zero3": 3}[cfg.name]
    zero: dict = {"stage": stage, "overlap_comm": False, "contiguous_gradients": True}
    if cfg.offload_optimizer:
        zero["offload_optimizer"] = {"device": "cpu", "pin_memory": True}
    if stage == 3:
        zero["stage3_gather_16bit_weights_on_model_save"] = True
        if cfg.offload_param:
            zero["offload_param"] = {"device": "cpu", "pin_memory": True}
    return {
        "train_batch_size": "auto",
        "train_micro_batch_size_per_gpu": "auto",
        "gradient_accumulation_steps": "auto",
        "gradient_clipping": "auto",
        "zero_optimization": zero,
        "bf16": {"enabled": "auto"},
        "fp16": {"enabled": "auto"},
        "wall_clock_breakdown": False,
    }
