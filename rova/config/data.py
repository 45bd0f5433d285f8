"""The `data.*` settings: the annotation file, decoding, frame sampling (`FrameSamplingConfig`), prompt wording
(`data.prompt.*`, `PromptTemplates`), TW-GRPO's question-answer inversion (`data.invert_questions.*`,
`InvertQuestionsConfig`) and how the RL stages mix task kinds in a batch (`data.task_mixing`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

from rova.config.checks import _choice, _positive, _seed, _unit
from rova.errors import ConfigError

# Qwen2.5-VL merges frames in pairs (temporal_patch_size 2): a frame count must be even.
FRAME_FACTOR = 2


@dataclass
class FrameSamplingConfig:
    """How many frames to sample from a video and how large each may be (OmegaConf-compatible).

    fps: target sampling rate; the real rate differs after clamping/rounding (see sample_frame_indices).
    min_frames, max_frames: bounds on the number of sampled frames, both even.
    min_pixels, max_pixels: per-frame pixel bounds; total_pixels: budget for the whole clip.
    image_factor: sides become multiples of this (patch_size * merge_size = 14 * 2 for Qwen2.5-VL).
    """

    fps: float
    min_frames: int
    max_frames: int
    min_pixels: int
    max_pixels: int
    total_pixels: int
    image_factor: int = 28

    def __post_init__(self) -> None:
        fps = self.fps
        if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not math.isfinite(fps) or fps <= 0:
            raise ConfigError("data.fps", f"must be a finite number > 0 (frames sampled per second), got {fps!r}")
        self.fps = float(fps)
        for name in ("min_frames", "max_frames", "min_pixels", "max_pixels", "total_pixels", "image_factor"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigError(f"data.{name}", f"must be an integer, got {value!r}")
            if value <= 0:
                raise ConfigError(f"data.{name}", f"must be > 0, got {value}")
        if self.min_frames < FRAME_FACTOR or self.min_frames % FRAME_FACTOR:
            raise ConfigError(
                "data.min_frames",
                f"must be an even number >= {FRAME_FACTOR} (Qwen2.5-VL groups frames in pairs), got {self.min_frames}",
            )
        if self.max_frames % FRAME_FACTOR:
            raise ConfigError(
                "data.max_frames", f"must be even (Qwen2.5-VL groups frames in pairs), got {self.max_frames}"
            )
        if self.max_frames < self.min_frames:
            raise ConfigError(
                "data.max_frames", f"must be >= data.min_frames ({self.min_frames}), got {self.max_frames}"
            )
        if self.min_pixels > self.max_pixels:
            raise ConfigError(
                "data.min_pixels", f"must be <= data.max_pixels ({self.max_pixels}), got {self.min_pixels}"
            )


SAMPLING_KEYS = ("fps", "min_frames", "max_frames", "min_pixels", "max_pixels", "total_pixels")


def frame_sampling_of(settings, image_factor: int = 28, group: str = "data") -> FrameSamplingConfig:
    """The FrameSamplingConfig of a config section holding the SAMPLING_KEYS (data.*, benchmark.*); errors
    name the keys of that section."""
    try:
        return FrameSamplingConfig(**{key: getattr(settings, key) for key in SAMPLING_KEYS}, image_factor=image_factor)
    except ConfigError as exc:
        if group == "data":
            raise
        # FrameSamplingConfig names data.<key>; this section's keys are <group>.<key>.
        raise ConfigError(exc.key.replace("data.", f"{group}.", 1), exc.problem.replace("data.", f"{group}.")) from None


# The Video-R1 prompt wording (QUESTION_TEMPLATE / TYPE_TEMPLATE), kept verbatim: checkpoints trained with it see
# the prompt they know; `grounding` is our addition. rova.data.prompts builds the prompt from these.
VIDEO_R1_QUESTION_TEMPLATE = (
    "{Question}\n"
    "Please think about this question as if you were a human pondering deeply. "
    "Engage in an internal dialogue using expressions such as 'let me think', 'wait', 'Hmm', 'oh, I see', "
    "'let's break it down', etc, or other natural language thought expressions "
    "It's encouraged to include self-reflection or verification in the reasoning process. "
    "Provide your detailed reasoning between the <think> </think> tags, and then give your final answer "
    "between the <answer> </answer> tags."
)

_NUMERIC = " Please provide the numerical value (e.g., 42 or 3.14) within the <answer> </answer> tags."
VIDEO_R1_TYPE_TEMPLATES = {
    "multiple choice": (
        " Please provide only the single option letter (e.g., A, B, C, D, etc.) within the <answer> </answer> tags."
    ),
    "numerical": _NUMERIC,
    "OCR": (
        " Please transcribe text from the image/video clearly and provide your text answer within the "
        "<answer> </answer> tags."
    ),
    "free-form": " Please provide your text answer within the <answer> </answer> tags.",
    "regression": _NUMERIC,
    "grounding": (
        " Please provide the time span as [start, end] in seconds (e.g., [1.0, 2.5]) within the "
        "<answer> </answer> tags."
    ),
}
# The task kinds of VideoChat-R1 (rova/rewards: grounded QA's <glue> intervals, tracking's per-frame boxes, caption
# recall's events); kept
# apart from Video-R1's wording above, which the tiny test model's vocabulary is built from.
VIDEOCHAT_R1_TYPE_TEMPLATES = {
    "grounded_qa": (
        " Please provide only the single option letter (e.g., A, B, C, D, etc.) within the <answer> </answer> tags, "
        "then the time spans that support it as [(start, end), ...] in seconds within the <glue> </glue> tags."
    ),
    "tracking": (
        " Please provide the object's bounding box in every frame, as [[x0, y0, x1, y1], ...] normalised to [0, 1], "
        "within the <answer> </answer> tags."
    ),
    "caption": " Please describe what happens in the video, event by event, within the <answer> </answer> tags.",
}

# The answer instruction for multiple choice when some answers hold several letters (TW-GRPO's "mixed" question
# type). With data.invert_questions on, EVERY multiple-choice record of the run is asked with it, inverted or not:
# two wordings would tell the model which questions were inverted.
MULTI_ANSWER_TEMPLATE_KEY = "multiple answers"
MULTI_ANSWER_TYPE_TEMPLATES = {
    MULTI_ANSWER_TEMPLATE_KEY: (
        " Please provide the letter of every correct option, separated by commas (e.g., A or A,C), within the "
        "<answer> </answer> tags."
    ),
}


# The procedural tasks `build_demo` renders (rova.data.procedural builds them) and their splits.
PROCEDURAL_TASKS = ("demo", "shapes")
PROCEDURAL_SPLITS = ("train", "val", "test")


@dataclass
class PromptTemplates:
    """Prompt wording (OmegaConf-compatible). `question` must contain the `{Question}` placeholder.

    For multiple choice the question is problem + options_header + one option per line, exactly as
    Video-R1 builds it (its header has no separator before "Options:").
    """

    question: str = VIDEO_R1_QUESTION_TEMPLATE
    type_templates: dict[str, str] = field(
        default_factory=lambda: {**VIDEO_R1_TYPE_TEMPLATES, **VIDEOCHAT_R1_TYPE_TEMPLATES, **MULTI_ANSWER_TYPE_TEMPLATES}
    )
    options_header: str = "Options:\n"
    system: Optional[str] = None

    def __post_init__(self) -> None:
        if "{Question}" not in self.question:
            raise ConfigError("data.prompt.question", "must contain the {Question} placeholder")
        missing = [t for t in VIDEO_R1_TYPE_TEMPLATES if t not in self.type_templates]
        if missing:
            raise ConfigError("data.prompt.type_templates", f"missing templates for problem types {missing}")


# data.task_mixing: how the RL stages put records of different task kinds (canonical problem types) into batches.
#   shuffled:  all records shuffled together (TRL's RepeatSampler; a batch may mix kinds)
#   per_batch: each process's generation batch holds one kind (rova.training.task_mixing), so every micro-batch does
TASK_MIXING = ("shuffled", "per_batch")


@dataclass
class InvertQuestionsConfig:
    """TW-GRPO's question-answer inversion of multiple-choice records (rova.training.inversion), drawn once when the
    RL training data is built.

    p: the probability that an invertible multiple-choice record is inverted; 0 = off (TW-GRPO's release: 0.5).
    seed: seeds each record's draws together with its sample_id; null = stage.seed.
    """

    p: float = 0.0
    seed: Optional[int] = None

    def __post_init__(self) -> None:
        _unit("data.invert_questions.p", self.p)
        if self.seed is not None:
            _seed("data.invert_questions.seed", self.seed)


@dataclass
class DataConfig:
    """Annotation file (Video-R1 schema), media root, decoding and Qwen2.5-VL frame sampling."""

    name: str = "video_r1"
    train_file: str = "???"            # a Video-R1-schema .json / .jsonl annotation file
    media_root: Optional[str] = None   # null = the annotation file's folder
    build_demo: bool = False           # render the procedural clips (demo_task, demo_split) into train_file's folder on first use
    demo_task: str = "demo"            # demo (every problem type, smoke runs) or shapes (learnable: experiment=learn_demo)
    demo_split: str = "train"          # train, val or test: each a seed of the task's generator, never sharing a clip
    demo_num_clips: int = 24
    backend: str = "decord"
    probe_workers: int = 8             # processes that check every video decodes before training (cached in run.cache_dir)
    decode_workers: int = 0            # threads that decode the next generation batch's clips while a step trains; 0 = inline
    # Only the records whose fields hold one of the listed values, e.g. {problem_type: [multiple choice]},
    # {data_source: [LLaVA-Video-178K]} or {shapes.kind: [flash_count]} ("a.b" = nested key); {} keeps all.
    keep: dict[str, list[str]] = field(default_factory=dict)
    max_samples: Optional[int] = None
    # Records the rewards cannot score (answer key) or holding chat special tokens are skipped and counted at load
    # (rova.data.screening); more than this fraction of them bad refuses the run. Eval's benchmark.file too.
    max_bad_fraction: float = 0.05
    # A control: every clip the run reads (training and eval) is flat grey frames of the same shape and timing,
    # so a run that still "learns" learns from the text alone (tests/learning: the blanked-video control).
    blank_video: bool = False
    fps: float = 2.0
    min_frames: int = 4
    max_frames: int = 16               # Video-R1 trains with 16 frames
    min_pixels: int = 3136
    max_pixels: int = 100352           # 128 * 28 * 28 per frame (Video-R1 training; its eval uses 256 * 28 * 28)
    total_pixels: int = 3211264
    # Wording: question, type_templates, options_header, system (Video-R1's by default, PromptTemplates above).
    prompt: PromptTemplates = field(default_factory=PromptTemplates)
    # RL stages only. Inverted multiple-choice questions (TW-GRPO; p = 0: off), and one task kind per generation
    # batch (per_batch, VideoChat-R1) or all shuffled together (shuffled). README "Data".
    invert_questions: InvertQuestionsConfig = field(default_factory=InvertQuestionsConfig)
    task_mixing: str = "shuffled"

    def __post_init__(self) -> None:
        if not self.train_file:
            raise ConfigError("data.train_file", "required: path to a Video-R1-schema .json or .jsonl file")
        _choice("data.backend", self.backend, ("decord", "pyav"))
        _positive("data.demo_num_clips", self.demo_num_clips)
        for key, values in dict(self.keep).items():
            if not str(key).strip() or not list(values):
                raise ConfigError(f"data.keep.{key}", "needs a field name and at least one value to keep")
        _choice("data.demo_task", self.demo_task, PROCEDURAL_TASKS)
        _choice("data.demo_split", self.demo_split, PROCEDURAL_SPLITS)
        _positive("data.probe_workers", self.probe_workers)
        _positive("data.decode_workers", self.decode_workers, allow_zero=True)
        if self.max_samples is not None:
            _positive("data.max_samples", self.max_samples)
        _unit("data.max_bad_fraction", self.max_bad_fraction)
        _choice("data.task_mixing", self.task_mixing, TASK_MIXING)
        if self.invert_questions.p > 0 and MULTI_ANSWER_TEMPLATE_KEY not in self.prompt.type_templates:
            raise ConfigError(
                "data.prompt.type_templates",
                f"data.invert_questions.p > 0 asks multiple-choice questions with the {MULTI_ANSWER_TEMPLATE_KEY!r} "
                "template (answers of several letters); add it",
            )
        self.frame_sampling()  # validates fps, frame and pixel bounds

    def frame_sampling(self, image_factor: int = 28) -> FrameSamplingConfig:
        return frame_sampling_of(self, image_factor)
