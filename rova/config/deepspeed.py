"""The DeepSpeed JSON, generated from `distributed.*` (batch sizes left "auto" so they follow the stage).

Lives in rova.config (not rova.launch) so that stages and workers can build it without importing the launcher.
"""

from __future__ import annotations

from rova.config.schema import DistributedConfig


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
