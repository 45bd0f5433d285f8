"""The `reward.*` settings: reward weights and constants (definitions: docs/rewards.md)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Optional

from rova.config.checks import _choice, _positive, _unit
from rova.errors import ConfigError

CAPTION_SCORERS = ("rule", "judge")  # reward.caption_scorer
CAPTION_THRESHOLD = 0.5  # reward.caption_threshold's default (rova's; the paper's judge has no threshold)
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass
class CaptionJudgeConfig:
    """`reward.caption_judge.*`: the LLM judge of caption recall (reward.caption_scorer=judge; rova.rewards.caption_judge).

    Any OpenAI-compatible chat-completions endpoint: `<base_url>/chat/completions` gets the caption and the numbered
    ground-truth events and answers with the JSON list of the events the caption covers. The API key is read from
    the environment variable NAMED by api_key_env (the key itself never goes in a config file or the run dir);
    null sends no key (a local `vllm serve`). timeout_s bounds each connection and read; a timeout, a connection
    error, HTTP 429 or 5xx is retried `retries` times (waiting retry_backoff_s, doubled each time); what still
    fails, and any unusable reply, is scored by the rule instead and counted.
    """

    base_url: Optional[str] = None      # e.g. http://localhost:8000/v1 (vllm serve), https://api.openai.com/v1
    model: Optional[str] = None         # the endpoint's model name
    api_key_env: Optional[str] = None   # e.g. OPENAI_API_KEY; null = no Authorization header
    timeout_s: float = 30.0
    retries: int = 2
    retry_backoff_s: float = 1.0
    max_concurrency: int = 8            # requests in flight at once (one per caption)
    max_tokens: int = 256               # the reply's budget: a short JSON list (more for a reasoning judge)

    def __post_init__(self) -> None:
        key = "reward.caption_judge"
        if self.base_url is not None and not str(self.base_url).startswith(("http://", "https://")):
            raise ConfigError(f"{key}.base_url", f"got {self.base_url!r}; an http:// or https:// URL, e.g. "
                                                 "http://localhost:8000/v1 (the part before /chat/completions)")
        if self.model is not None and not str(self.model).strip():
            raise ConfigError(f"{key}.model", "must not be empty")
        if self.api_key_env is not None and not _ENV_NAME.fullmatch(str(self.api_key_env)):
            raise ConfigError(f"{key}.api_key_env", "must be the NAME of an environment variable (e.g. OPENAI_API_KEY) "
                                                    "that holds the key, never the key itself")
        _positive(f"{key}.timeout_s", self.timeout_s)
        _positive(f"{key}.retries", self.retries, allow_zero=True)
        _positive(f"{key}.retry_backoff_s", self.retry_backoff_s, allow_zero=True)
        _positive(f"{key}.max_concurrency", self.max_concurrency)
        _positive(f"{key}.max_tokens", self.max_tokens)

    def check_ready(self, environ: Optional[Mapping[str, str]] = None) -> None:
        """reward.caption_scorer=judge: the endpoint and model are set and the key's variable is in the environment
        (`environ`, os.environ by default)."""
        environ = os.environ if environ is None else environ
        for name in ("base_url", "model"):
            if getattr(self, name) is None:
                raise ConfigError(f"reward.caption_judge.{name}", "required with reward.caption_scorer=judge "
                                                                  "(docs/rewards.md, caption recall)")
        if self.api_key_env is not None and not environ.get(self.api_key_env):
            raise ConfigError("reward.caption_judge.api_key_env",
                              f"names {self.api_key_env}, which is not set in the environment; export it, or set "
                              "api_key_env=null for an endpoint that needs no key")


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
    w_overlong: float = 0.0
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
    # DAPO's soft overlong punishment (rova.rewards.overlong), weighted by w_overlong (verl's penalty_factor): no
    # penalty up to overlong_max_length - overlong_buffer tokens, then linearly down to -1 at overlong_max_length
    # (DAPO: 20480 with a 4096-token buffer). Both are filled in at compose time (resolve_overlong): the length null =
    # stage.max_completion_length, the buffer null = a fifth of the length (DAPO's ratio).
    overlong_buffer: Optional[int] = None
    overlong_max_length: Optional[int] = None
    # video_r1: one <think>/<answer> rule for every task (rova.rewards.format); per_task: VideoChat-R1's strict
    # rules (grounded QA adds <glue>, tracking needs a valid K x 4 box list: rova.rewards.format_rules).
    format_rule: str = "video_r1"
    # A multiple-choice record with several correct letters ("A,C"): exact (all of them, no other) or soft
    # (TW-GRPO: |S| / |GT| for a non-empty subset S of GT, else 0; rova.rewards.choices).
    multi_answer: str = "exact"
    # Caption recall (problem type `caption`, VideoChat-R1; rova.rewards.caption): the share of the ground-truth events
    # a caption covers. rule: an event is covered when the LCS of its tokens with the caption's tokens holds at least
    # caption_threshold of them; judge: an LLM at caption_judge.* says which events are covered, and the items it
    # fails on are scored by the rule (counted: metric caption/judge_fallbacks, results.json config.scoring.caption).
    caption_scorer: str = "rule"
    caption_threshold: float = CAPTION_THRESHOLD
    caption_judge: CaptionJudgeConfig = field(default_factory=CaptionJudgeConfig)
    # A control: each trained branch's total rewards are permuted across its completions (seeded by the step)
    # before the advantages, so they no longer say which completion was right; logged rewards stay the true ones.
    shuffle: bool = False

    def resolve_overlong(self, max_completion_length: int) -> None:
        """Fill the soft overlong punishment's nulls (L_max = the rollout's max_completion_length, L_cache = L_max / 5,
        DAPO's 4096 of 20480) and, when the punishment is weighted, check that L_cache < L_max."""
        if self.overlong_max_length is None:
            self.overlong_max_length = int(max_completion_length)
        if self.overlong_buffer is None:
            self.overlong_buffer = max(1, self.overlong_max_length // 5)
        if self.w_overlong > 0 and self.overlong_buffer >= self.overlong_max_length:
            raise ConfigError("reward.overlong_buffer", f"got {self.overlong_buffer}; must be < "
                              f"reward.overlong_max_length ({self.overlong_max_length}) so that completions up to "
                              "their difference go unpunished (DAPO: 4096 of 20480)")

    def __post_init__(self) -> None:
        for key in ("w_acc", "w_fmt", "w_len", "w_temp", "w_kl", "w_iou", "w_overlong", "len_bonus",
                    "temporal_alpha", "kl_alpha", "kl_loss_coef"):
            _positive(f"reward.{key}", getattr(self, key), allow_zero=True)
        _positive("reward.len_min", self.len_min, allow_zero=True)
        if self.len_max < self.len_min:
            raise ConfigError("reward.len_max", f"got {self.len_max}; must be >= reward.len_min ({self.len_min})")
        for key in ("overlong_buffer", "overlong_max_length"):
            if getattr(self, key) is not None:
                _positive(f"reward.{key}", getattr(self, key))
        if self.overlong_buffer is not None and self.overlong_max_length is not None:
            self.resolve_overlong(self.overlong_max_length)
        _positive("reward.temporal_mu", self.temporal_mu, allow_zero=True)
        _choice("reward.kl_estimator", self.kl_estimator, ("full", "topk", "sampled"))
        _positive("reward.kl_topk", self.kl_topk)
        _unit("reward.acc_threshold", self.acc_threshold)
        _choice("reward.format_rule", self.format_rule, ("video_r1", "per_task"))
        _choice("reward.multi_answer", self.multi_answer, ("exact", "soft"))
        if isinstance(self.caption_judge, dict):  # VideoGRPOConfig's dict round trip (to_dict, then the constructor)
            self.caption_judge = CaptionJudgeConfig(**self.caption_judge)
        _choice("reward.caption_scorer", self.caption_scorer, CAPTION_SCORERS)
        if not 0.0 < self.caption_threshold <= 1.0:
            raise ConfigError("reward.caption_threshold", f"got {self.caption_threshold!r}; must be in (0, 1] (an "
                                                          "event is covered when its LCS recall >= this)")
        if self.caption_scorer == "judge":
            self.caption_judge.check_ready()
