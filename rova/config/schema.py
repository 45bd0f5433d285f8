"""The root config: every group's schema (one module per group, rova/config/<group>.py) and the cross-field rules.

Every default has ONE home: the field defaults of the group dataclasses. `RootConfig` is registered with Hydra's
ConfigStore (`rova.config.store`) as the first entry of conf/config.yaml's defaults list, so the YAML files in
`conf/` are deltas over these dataclasses and every key can be set without `+`. Types and ranges live in the
group modules, the rules that span groups here. Field names ARE the YAML keys and the argument names of the code
that receives them (`reward.kl_alpha` is the `kl_alpha` of the reward). Each check raises
`ConfigError("<group>.<key>", "<what is allowed>")`.

Behaviour is switched by config, never by stage name: `stage.name` only has to be a registered stage
(`rova.config.stage`); the rules below follow its declared `policy_groups` and keys such as `tgrpo.branches`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rova.config.benchmark import BenchmarkConfig
from rova.config.branches import CORRUPTED
from rova.config.cluster import ClusterConfig
from rova.config.corruption import FAMILIES as CORRUPTION_FAMILIES
from rova.config.corruption import CorruptionConfig
from rova.config.cot import CotConfig
from rova.config.data import DataConfig
from rova.config.distributed import DistributedConfig
from rova.config.sequence_parallel import check_sequence_parallel
from rova.config.eval import EvalConfig
from rova.config.logger import LoggerConfig
from rova.config.memory import MemoryConfig
from rova.config.model import ModelConfig
from rova.config.objective import ObjectiveConfig
from rova.config.recipe import RecipeConfig
from rova.config.reward import RewardConfig
from rova.config.rollout import RolloutConfig
from rova.config.run import RunConfig
from rova.config.select import SelectConfig
from rova.config.sft import SftConfig
from rova.config.stage import StageConfig, get_spec
from rova.config.tgrpo import TGRPOConfig
from rova.errors import ConfigError


def trains_policy_groups(name: str) -> bool:
    """Whether the stage trains a policy on prompt groups (its declared `policy_groups`): what the RL rules key on."""
    return get_spec(name).policy_groups


def corruption_probability(cfg: CorruptionConfig) -> float:
    """Probability that a clip is corrupted at all (the rest is the clean remainder)."""
    return float(sum(getattr(cfg, f"p_{family}") for family in CORRUPTION_FAMILIES))


@dataclass
class RootConfig:
    stage: StageConfig = field(default_factory=StageConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    corruption: CorruptionConfig = field(default_factory=CorruptionConfig)
    reward: RewardConfig = field(default_factory=RewardConfig)
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    distributed: DistributedConfig = field(default_factory=DistributedConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    tgrpo: TGRPOConfig = field(default_factory=TGRPOConfig)
    memory: MemoryConfig = field(default_factory=MemoryConfig)
    benchmark: BenchmarkConfig = field(default_factory=BenchmarkConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    sft: SftConfig = field(default_factory=SftConfig)
    cot: CotConfig = field(default_factory=CotConfig)
    select: SelectConfig = field(default_factory=SelectConfig)
    run: RunConfig = field(default_factory=RunConfig)
    recipe: RecipeConfig = field(default_factory=RecipeConfig)

    def __post_init__(self) -> None:
        stage = self.stage
        rl = trains_policy_groups(stage.name)
        corrupted_branch = rl and CORRUPTED in self.tgrpo.branches
        local_rows = stage.per_device_train_batch_size * stage.generation_steps
        if rl and local_rows % stage.num_generations != 0:
            raise ConfigError(
                "stage.per_device_train_batch_size",
                f"per_device_train_batch_size x steps_per_generation ({local_rows}) must be a multiple of "
                f"stage.num_generations ({stage.num_generations}) so each process holds whole prompt groups",
            )
        if rl and self.objective.advantage_regression:
            self._check_whole_groups_per_micro_batch()
        self.reward.resolve_overlong(stage.max_completion_length)
        if self.tgrpo.shuffled_generations is None:
            self.tgrpo.shuffled_generations = max(1, stage.num_generations // 2)
        if self.tgrpo.corrupted_generations is None:
            self.tgrpo.corrupted_generations = min(stage.num_generations, max(2, stage.num_generations // 2))
        if corrupted_branch:
            corrupted_rows = local_rows // stage.num_generations * self.tgrpo.corrupted_generations
            if corrupted_rows % stage.generation_steps:
                raise ConfigError(
                    "tgrpo.corrupted_generations",
                    f"the corrupted branch adds {corrupted_rows} rows per process, which must split evenly over "
                    f"steps_per_generation ({stage.generation_steps})",
                )
        for key in ("shuffled_generations", "corrupted_generations"):
            if getattr(self.tgrpo, key) > stage.num_generations:
                raise ConfigError(f"tgrpo.{key}", f"must be <= stage.num_generations ({stage.num_generations})")
        if corrupted_branch:
            if corruption_probability(self.corruption) <= 0.0:
                raise ConfigError(
                    "corruption",
                    "the corrupted branch needs a corruption mix with a non-zero probability "
                    "(e.g. corruption=rova), or drop 'corrupted' from tgrpo.branches",
                )
        if self.reward.w_kl > 0 and rl and corruption_probability(self.corruption) <= 0.0:
            raise ConfigError("reward.w_kl", "the KL-consistency reward needs a corruption mix (e.g. corruption=rova)")
        if rl and self.objective.dynamic_sampling and self.reward.shuffle:
            raise ConfigError(
                "objective.dynamic_sampling",
                "drops groups whose trained rewards are all equal, but reward.shuffle=true (a control) permutes the "
                "trained rewards across the whole batch after scoring; set one of them to false",
            )
        if rl and self.objective.dynamic_sampling and self.data.task_mixing != "shuffled":
            raise ConfigError(
                "objective.dynamic_sampling",
                f"refills dropped groups with prompts drawn from the whole dataset, which would mix task kinds in "
                f"data.task_mixing={self.data.task_mixing}'s one-kind batches; set one of them off",
            )
        if self.data.decode_workers > 0 and stage.dataloader_num_workers > 0:
            raise ConfigError(
                "data.decode_workers",
                f"{self.data.decode_workers} needs stage.dataloader_num_workers=0 (now {stage.dataloader_num_workers}): "
                "the decode workers learn the next rows from the trainer process's dataloader; set one of them to 0",
            )
        lora = self.model.lora
        if lora.save_merged and not lora.enabled:
            raise ConfigError("model.lora.save_merged", "writes base + adapter merged: needs model.lora.enabled=true")
        for key, on in (("model.lora.enabled", lora.enabled), ("model.freeze_vision", self.model.freeze_vision)):
            if on and not rl:
                raise ConfigError(key, f"what trains is chosen for the RL stages (grpo, tgrpo, memory); stage "
                                  f"{stage.name!r} is not one")
        if self.memory.enabled and not rl:
            raise ConfigError("memory.enabled", f"the difficulty memory needs an RL stage; stage {stage.name!r} is not one")
        for key in ("augment_easy", "augment_hard"):
            if getattr(self.memory, key) and not rl:
                raise ConfigError(f"memory.{key}", f"re-rolls the prompt groups of an RL stage (grpo, tgrpo, memory); "
                                  f"stage {stage.name!r} is not one: set it to false")
        if rl and self.memory.augment_easy and corruption_probability(self.corruption) <= 0.0:
            raise ConfigError(
                "memory.augment_easy",
                "re-rolls an all-right group on a clip corrupted by the corruption mix, but the mix never corrupts "
                "(corruption.p_* sum to 0, e.g. corruption=none): choose a mix (e.g. corruption=rova) or set it to false",
            )
        # Read when the RL stages build their training rows and sampler; another stage would silently ignore them
        # (and an inverted question would no longer match an SFT rationale).
        if self.data.invert_questions.p > 0 and not rl:
            raise ConfigError("data.invert_questions.p", f"inverts the RL stages' training questions (grpo, tgrpo, "
                              f"memory); stage {stage.name!r} is not one: set it to 0")
        if self.data.task_mixing != "shuffled" and not rl:
            raise ConfigError("data.task_mixing", f"orders the RL stages' batches (grpo, tgrpo, memory); stage "
                              f"{stage.name!r} is not one: leave it at shuffled")
        for key, shards in (("cot.shards", self.cot.shards), ("select.shards", self.select.shards)):
            if shards > 1 and self.cluster.name != "slurm":
                raise ConfigError(key, "shards are SLURM array tasks: use cluster=slurm, or distributed=ddp "
                                  "with distributed.nproc_per_node to shard over local processes")
        if self.eval.shards > 1 and self.cluster.name != "slurm":
            raise ConfigError("eval.shards", "shards are SLURM array tasks: use cluster=slurm, or distributed=ddp "
                              "with distributed.nproc_per_node to shard over local processes")
        if self.cluster.name == "slurm" and self.cluster.gpus_per_node == 0 and self.distributed.backend == "nccl":
            raise ConfigError("distributed.backend", "nccl needs GPUs: set cluster.gpus_per_node or backend=gloo")
        check_sequence_parallel(self)

    def _check_whole_groups_per_micro_batch(self) -> None:
        """objective.advantage_regression (Reg-GRPO) regresses on each group's mean log-ratio, so every group must be
        whole in one micro-batch. rova then shuffles a rollout's GROUPS, not its rows, and deals them evenly over the
        steps_per_generation micro-batches (rova.training.group_shuffle): each micro-batch holds
        per_device_train_batch_size / num_generations clean groups (and as many of the corrupted branch), so that
        ratio must be whole. The rows carry their group id."""
        stage = self.stage
        if stage.per_device_train_batch_size % stage.num_generations:
            raise ConfigError(
                "stage.per_device_train_batch_size",
                f"objective.advantage_regression (Reg-GRPO) needs each prompt group whole in one micro-batch: "
                f"per_device_train_batch_size ({stage.per_device_train_batch_size}) must be a multiple of "
                f"stage.num_generations ({stage.num_generations})",
            )
        if self.rollout.name == "vllm" and self.rollout.vllm_importance_sampling_correction:
            raise ConfigError(
                "rollout.vllm_importance_sampling_correction",
                "objective.advantage_regression's loss has no importance ratio to correct (the vLLM / trainer "
                "mismatch correction multiplies TRL's per-token policy loss): set it to false",
            )
