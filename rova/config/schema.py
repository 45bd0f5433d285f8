"""Typed schemas for every config group, checked at compose time (before anything is spawned or submitted).

Every default has ONE home: the field defaults here. `RootConfig` is registered with Hydra's ConfigStore
(`rova.config.store`) as the first entry of conf/config.yaml's defaults list, so the YAML files in `conf/`
are deltas over these dataclasses and every key can be set without `+`. Types, ranges and cross-field
rules live here too. Field names ARE the YAML keys and the argument names of the code that receives them
(`reward.kl_alpha` is the `kl_alpha` of the reward). Each `__post_init__` raises
`ConfigError("<group>.<key>", "<what is allowed>")`.

Behaviour is switched by config, never by stage name: `stage.name` only has to be a registered stage
(`rova.stages.registry`); the rules below follow its `kind` and keys such as `tgrpo.branches`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from rova.corruption.config import CorruptionConfig
from rova.data.prompts import PromptTemplates
from rova.data.sampling import FrameSamplingConfig, frame_sampling_of
from rova.annotate.config import CotConfig
from rova.errors import ConfigError
from rova.eval.config import BenchmarkConfig, EvalConfig
from rova.memory.difficulty import MemoryConfig
from rova.recipe.config import RecipeConfig
from rova.training.sft_config import SftConfig

CORRUPTION_FAMILIES = ("photometric", "weather", "occlusion", "shake", "temporal")
from rova.config.branches import BRANCHES as TGRPO_BRANCHES  # noqa: E402  (the one home of branch names)
SHUFFLE_MODES = ("uniform", "derangement")  # the same tuple as rova.corruption.temporal.SHUFFLE_MODES (cv2-free here)
VLLM_IS_MODES = ("token_truncate", "token_mask", "sequence_truncate", "sequence_mask")


def stage_kind(name: str) -> str:
    """The registered kind of a stage ("rl", ...): what the cross-field rules key on."""
    from rova.stages.registry import get_spec  # light (no torch); imported here to keep config -> stages one-way

    return get_spec(name).kind


def corruption_probability(cfg: CorruptionConfig) -> float:
    """Probability that a clip is corrupted at all (the rest is the clean remainder)."""
    return float(sum(getattr(cfg, f"p_{family}") for family in CORRUPTION_FAMILIES))


def _choice(key: str, value: Any, allowed: tuple) -> None:
    if value not in allowed:
        raise ConfigError(key, f"got {value!r}; allowed: {', '.join(map(str, allowed))}")


def _positive(key: str, value: float, *, allow_zero: bool = False) -> None:
    if value < 0 or (value == 0 and not allow_zero):
        raise ConfigError(key, f"got {value!r}; must be {'>= 0' if allow_zero else '> 0'}")


def _unit(key: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ConfigError(key, f"got {value!r}; must be in [0, 1]")


@dataclass
class StageConfig:
    """Which stage runs, and the trainer hyperparameters (TRL GRPOConfig / SFTConfig names)."""

    name: str = "grpo"
    max_steps: int = 4
    learning_rate: float = 1e-5
    lr_scheduler_type: str = "constant"
    warmup_steps: float = 0.0
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    per_device_train_batch_size: int = 4
    gradient_accumulation_steps: int = 1
    steps_per_generation: Optional[int] = None
    num_generations: int = 4
    num_iterations: int = 1
    max_completion_length: int = 48
    max_prompt_length: Optional[int] = None
    temperature: float = 1.0
    top_p: float = 1.0
    beta: float = 0.0
    epsilon: float = 0.2
    loss_type: str = "dapo"
    scale_rewards: str = "group"
    mask_truncated_completions: bool = False
    gradient_checkpointing: bool = False
    save_steps: int = 2
    save_total_limit: Optional[int] = 2
    logging_steps: int = 1
    seed: int = 42
    dataloader_num_workers: int = 0

    def __post_init__(self) -> None:
        from rova.stages.registry import stage_names

        _choice("stage.name", self.name, stage_names())
        _positive("stage.max_steps", self.max_steps)
        _positive("stage.learning_rate", self.learning_rate)
        _positive("stage.warmup_steps", self.warmup_steps, allow_zero=True)
        _positive("stage.weight_decay", self.weight_decay, allow_zero=True)
        _positive("stage.max_grad_norm", self.max_grad_norm)
        _positive("stage.per_device_train_batch_size", self.per_device_train_batch_size)
        _positive("stage.gradient_accumulation_steps", self.gradient_accumulation_steps)
        if self.steps_per_generation is not None:
            _positive("stage.steps_per_generation", self.steps_per_generation)
        if self.num_generations < 2:
            raise ConfigError("stage.num_generations", f"got {self.num_generations}; GRPO needs a group of >= 2")
        _positive("stage.num_iterations", self.num_iterations)
        _positive("stage.max_completion_length", self.max_completion_length)
        if self.max_prompt_length is not None:
            _positive("stage.max_prompt_length", self.max_prompt_length)
        _positive("stage.temperature", self.temperature)
        if not 0.0 < self.top_p <= 1.0:
            raise ConfigError("stage.top_p", f"got {self.top_p!r}; must be in (0, 1]")
        _positive("stage.beta", self.beta, allow_zero=True)
        _unit("stage.epsilon", self.epsilon)
        _choice("stage.loss_type", self.loss_type, ("grpo", "bnpo", "dr_grpo", "dapo"))
        _choice("stage.scale_rewards", self.scale_rewards, ("group", "batch", "none"))
        _positive("stage.save_steps", self.save_steps)
        if self.save_total_limit is not None:
            _positive("stage.save_total_limit", self.save_total_limit)
        _positive("stage.logging_steps", self.logging_steps)
        _positive("stage.dataloader_num_workers", self.dataloader_num_workers, allow_zero=True)

    @property
    def generation_steps(self) -> int:
        return self.steps_per_generation or self.gradient_accumulation_steps


# The language model's attention and MLP projections. PEFT matches each name against the end of a module's
# dotted name; the vision tower (whose MLP also has gate_proj / up_proj / down_proj) is always excluded by
# rova.models.lora, which hands PEFT the tower's prefix as `exclude_modules`.
LORA_TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass
class LoraConfig:
    """LoRA adapters through PEFT (rova/models/lora.py): only the adapters train; the base weights stay as loaded."""

    enabled: bool = False
    rank: int = 16
    alpha: float = 32.0
    dropout: float = 0.05
    # Module names (or dotted suffixes, e.g. "self_attn.q_proj") of the language model; never the vision tower.
    target_modules: list[str] = field(default_factory=lambda: list(LORA_TARGET_MODULES))
    save_merged: bool = False  # also write run_dir/model/merged: base + adapter as one from_pretrained checkpoint

    def __post_init__(self) -> None:
        _positive("model.lora.rank", self.rank)
        _positive("model.lora.alpha", self.alpha)
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError("model.lora.dropout", f"got {self.dropout!r}; must be in [0, 1)")
        if not self.target_modules:
            raise ConfigError("model.lora.target_modules", "empty: name at least one module (e.g. q_proj)")
        blank = [name for name in self.target_modules if not str(name).strip(". ")]
        if blank:
            raise ConfigError("model.lora.target_modules", f"got {list(self.target_modules)}; a name is blank")


@dataclass
class ModelConfig:
    """A checkpoint of a model family (rova/models/families): a local directory or a hub id (hub ids need network
    at run time). The family decides the frame-size factor, the video metadata and the vision tokens.

    `path` may also be a LoRA adapter directory (a LoRA run's model/, or one of its checkpoints): its base model
    is loaded and the adapter merged in (rova.models.lora.load_adapter).
    """

    name: str = "tiny"
    family: str = "???"                # a family adapter: rova.models.families.family_names()
    path: str = "???"
    build_tiny: bool = False
    dtype: str = "float32"
    attn_implementation: str = "sdpa"
    share_vision_encoding: bool = True  # one vision-tower run per distinct clip per pass (False: one per completion)
    freeze_vision: bool = False  # the vision tower's parameters get requires_grad=False (with or without LoRA)
    lora: LoraConfig = field(default_factory=LoraConfig)

    def __post_init__(self) -> None:
        # "???" (MISSING) is reported by OmegaConf when the config is instantiated; only reject empty values.
        if not self.path:
            raise ConfigError("model.path", "required: a checkpoint directory or hub id")
        _choice("model.dtype", self.dtype, ("float32", "bfloat16", "float16", "auto"))
        _choice("model.attn_implementation", self.attn_implementation, ("sdpa", "eager", "flash_attention_2"))
        if self.family != "???":  # MISSING until a model preset (conf/model/*.yaml) sets it
            from rova.models.families import family_names

            _choice("model.family", self.family, family_names())

    @property
    def image_factor(self) -> int:
        """Frame sides are multiples of this (the family's patch size x merge size)."""
        from rova.models.families import get_family

        return get_family(self.family).frame_factor


@dataclass
class DataConfig:
    """Annotation file (Video-R1 schema), media root, decoding and Qwen2.5-VL frame sampling."""

    name: str = "video_r1"
    train_file: str = "???"            # a Video-R1-schema .json / .jsonl annotation file
    media_root: Optional[str] = None   # null = the annotation file's folder
    build_demo: bool = False           # build the procedural demo clips into train_file's folder on first use
    demo_num_clips: int = 24
    backend: str = "decord"
    probe_workers: int = 8             # processes that check every video decodes before training (cached in run.cache_dir)
    decode_workers: int = 0            # threads that decode the next generation batch's clips while a step trains; 0 = inline
    max_samples: Optional[int] = None
    fps: float = 2.0
    min_frames: int = 4
    max_frames: int = 16               # Video-R1 trains with 16 frames
    min_pixels: int = 3136
    max_pixels: int = 100352           # 128 * 28 * 28 per frame (Video-R1 training; its eval uses 256 * 28 * 28)
    total_pixels: int = 3211264
    # Wording: question, type_templates, options_header, system (Video-R1's by default, rova/data/prompts.py).
    prompt: PromptTemplates = field(default_factory=PromptTemplates)

    def __post_init__(self) -> None:
        if not self.train_file:
            raise ConfigError("data.train_file", "required: path to a Video-R1-schema .json or .jsonl file")
        _choice("data.backend", self.backend, ("decord", "pyav"))
        _positive("data.demo_num_clips", self.demo_num_clips)
        _positive("data.probe_workers", self.probe_workers)
        _positive("data.decode_workers", self.decode_workers, allow_zero=True)
        if self.max_samples is not None:
            _positive("data.max_samples", self.max_samples)
        self.frame_sampling()  # validates fps, frame and pixel bounds

    def frame_sampling(self, image_factor: int = 28) -> FrameSamplingConfig:
        return frame_sampling_of(self, image_factor)


@dataclass
class RewardConfig:
    """Reward weights and constants (definitions: docs/rewards.md)."""

    name: str = "video_r1"
    w_acc: float = 1.0
    w_fmt: float = 1.0
    w_len: float = 0.0
    w_temp: float = 1.0
    w_kl: float = 0.0
    w_iou: float = 1.0
    len_min: int = 320
    len_max: int = 512
    len_bonus: float = 0.2
    temporal_alpha: float = 0.3
    temporal_mu: float = 0.8
    kl_alpha: float = 1.0
    kl_estimator: str = "full"
    kl_topk: int = 64
    kl_loss_coef: float = 0.0
    acc_threshold: float = 0.1

    def __post_init__(self) -> None:
        for key in ("w_acc", "w_fmt", "w_len", "w_temp", "w_kl", "w_iou", "len_bonus", "temporal_alpha",
                    "kl_alpha", "kl_loss_coef"):
            _positive(f"reward.{key}", getattr(self, key), allow_zero=True)
        _positive("reward.len_min", self.len_min, allow_zero=True)
        if self.len_max < self.len_min:
            raise ConfigError("reward.len_max", f"got {self.len_max}; must be >= reward.len_min ({self.len_min})")
        _positive("reward.temporal_mu", self.temporal_mu, allow_zero=True)
        _choice("reward.kl_estimator", self.kl_estimator, ("full", "topk", "sampled"))
        _positive("reward.kl_topk", self.kl_topk)
        _unit("reward.acc_threshold", self.acc_threshold)


@dataclass
class RolloutConfig:
    """Where completions are generated: HF generate, or vLLM colocated with training."""

    name: str = "hf"
    vllm_gpu_memory_utilization: float = 0.3
    vllm_enable_sleep_mode: bool = False
    vllm_max_model_length: Optional[int] = None
    # Importance sampling between vLLM's sampling log-probs and the trainer's (TRL GRPOConfig names and defaults).
    vllm_importance_sampling_correction: bool = True
    vllm_importance_sampling_mode: str = "sequence_mask"
    vllm_importance_sampling_clip_max: Optional[float] = 3.0
    vllm_importance_sampling_clip_min: Optional[float] = None

    def __post_init__(self) -> None:
        _choice("rollout.name", self.name, ("hf", "vllm"))
        if not 0.0 < self.vllm_gpu_memory_utilization <= 1.0:
            raise ConfigError("rollout.vllm_gpu_memory_utilization", "must be in (0, 1]")
        _choice("rollout.vllm_importance_sampling_mode", self.vllm_importance_sampling_mode, VLLM_IS_MODES)
        lo, hi = self.vllm_importance_sampling_clip_min, self.vllm_importance_sampling_clip_max
        if hi is not None:
            _positive("rollout.vllm_importance_sampling_clip_max", hi)
        if lo is not None:
            _positive("rollout.vllm_importance_sampling_clip_min", lo, allow_zero=True)
        if lo is not None and hi is not None and lo >= hi:
            raise ConfigError(
                "rollout.vllm_importance_sampling_clip_min",
                f"got {lo}; must be < rollout.vllm_importance_sampling_clip_max ({hi})",
            )
        if (self.vllm_importance_sampling_correction and self.vllm_importance_sampling_mode.endswith("_truncate")
                and lo is None and hi is None):
            raise ConfigError(
                "rollout.vllm_importance_sampling_clip_max",
                f"mode {self.vllm_importance_sampling_mode} truncates: set clip_max and/or clip_min",
            )


@dataclass
class DistributedConfig:
    """How many worker processes, and which strategy (DDP via torchrun, ZeRO via the DeepSpeed launcher)."""

    name: str = "none"
    nproc_per_node: Optional[int] = None
    offload_optimizer: bool = False
    offload_param: bool = False
    backend: str = "auto"
    master_port: Optional[int] = None

    def __post_init__(self) -> None:
        _choice("distributed.name", self.name, ("none", "ddp", "zero2", "zero3"))
        if self.nproc_per_node is not None:
            _positive("distributed.nproc_per_node", self.nproc_per_node)
        _choice("distributed.backend", self.backend, ("auto", "nccl", "gloo"))
        if self.offload_param and self.name != "zero3":
            raise ConfigError("distributed.offload_param", "parameter offload needs distributed=zero3")
        if self.offload_optimizer and self.name not in ("zero2", "zero3"):
            raise ConfigError("distributed.offload_optimizer", "optimizer offload needs distributed=zero2 or zero3")
        if self.master_port is not None and not 1024 <= self.master_port <= 65535:
            raise ConfigError("distributed.master_port", f"got {self.master_port}; must be in [1024, 65535]")


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


@dataclass
class LoggerConfig:
    """Experiment tracking. wandb offline needs no key; `logger=none` turns tracking off."""

    name: str = "wandb"
    project: str = "rova"
    entity: Optional[str] = None
    mode: str = "offline"
    group: Optional[str] = None
    tags: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        _choice("logger.name", self.name, ("wandb", "none"))
        _choice("logger.mode", self.mode, ("offline", "online", "disabled"))


@dataclass
class TGRPOConfig:
    """T-GRPO branches: which run, and how many completions each generates per prompt.

    The default is plain GRPO (the clean group only); stage=tgrpo and stage=memory add the other branches.
    """

    branches: list[str] = field(default_factory=lambda: ["clean"])
    # null = stage.num_generations // 2 (Video-R1); only its accuracy is used (temporal reward), so 1 is allowed.
    shuffled_generations: Optional[int] = None
    # null = max(2, stage.num_generations // 2), capped at the group (ROVA). The corrupted group is trained with
    # its own group-normalised advantage: a group of 1 always has advantage 0 and only dilutes the loss.
    corrupted_generations: Optional[int] = None
    shuffle: str = "uniform"  # the shuffled branch's frame order: uniform (Video-R1) | derangement (no frame stays)

    def __post_init__(self) -> None:
        for name in self.branches:
            _choice("tgrpo.branches", name, TGRPO_BRANCHES)
        if "clean" not in self.branches:
            raise ConfigError("tgrpo.branches", "must contain 'clean' (the group every other branch is compared to)")
        if len(set(self.branches)) != len(self.branches):
            raise ConfigError("tgrpo.branches", f"duplicate branch in {self.branches}")
        if self.shuffled_generations is not None:
            _positive("tgrpo.shuffled_generations", self.shuffled_generations)
        if self.corrupted_generations is not None and self.corrupted_generations < 2:
            raise ConfigError(
                "tgrpo.corrupted_generations",
                f"got {self.corrupted_generations}; the corrupted branch is a trained group and needs >= 2 completions "
                "(a group of one has advantage 0 and gives no gradient)",
            )
        _choice("tgrpo.shuffle", self.shuffle, SHUFFLE_MODES)


@dataclass
class RunConfig:
    """Where the run writes, and what it resumes."""

    output_root: str = "outputs"
    dir: Optional[str] = None
    cache_dir: str = ".cache"
    resume: bool = True
    tag: Optional[str] = None

    def __post_init__(self) -> None:
        if self.tag is not None and not all(c.isalnum() or c in "-_." for c in self.tag):
            raise ConfigError("run.tag", f"got {self.tag!r}; use letters, digits, '-', '_' or '.' (it names the run dir)")


@dataclass
class RootConfig:
    stage: StageConfig = field(default_factory=StageConfig)
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
    run: RunConfig = field(default_factory=RunConfig)
    recipe: RecipeConfig = field(default_factory=RecipeConfig)

    def __post_init__(self) -> None:
        stage = self.stage
        rl = stage_kind(stage.name) == "rl"
        corrupted_branch = rl and "corrupted" in self.tgrpo.branches
        local_rows = stage.per_device_train_batch_size * stage.generation_steps
        if rl and local_rows % stage.num_generations != 0:
            raise ConfigError(
                "stage.per_device_train_batch_size",
                f"per_device_train_batch_size x steps_per_generation ({local_rows}) must be a multiple of "
                f"stage.num_generations ({stage.num_generations}) so each process holds whole prompt groups",
            )
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
        if self.cot.shards > 1 and self.cluster.name != "slurm":
            raise ConfigError("cot.shards", "shards are SLURM array tasks: use cluster=slurm, or distributed=ddp "
                              "with distributed.nproc_per_node to shard over local processes")
        if self.eval.shards > 1 and self.cluster.name != "slurm":
            raise ConfigError("eval.shards", "shards are SLURM array tasks: use cluster=slurm, or distributed=ddp "
                              "with distributed.nproc_per_node to shard over local processes")
        if self.cluster.name == "slurm" and self.cluster.gpus_per_node == 0 and self.distributed.backend == "nccl":
            raise ConfigError("distributed.backend", "nccl needs GPUs: set cluster.gpus_per_node or backend=gloo")
