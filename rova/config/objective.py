"""The `objective` group: the policy loss of the RL stages (grpo, tgrpo, memory), TRL 1.16 GRPOConfig names.

Every key here is handed to TRL's GRPOConfig under the same name (rova.training.args) and is the ONE home of its
concern: the loss aggregation (`loss_type`), the clip range (`epsilon`, `epsilon_high`, `delta`), the ratio level
(`importance_sampling_level`), the token selection (`top_entropy_quantile`), the entropy bonus (`entropy_coef`),
the KL penalty (`beta`), the reward scaling of the advantages (`scale_rewards`, applied by rova's own advantage
code: rova.training.scoring.group_advantages) and `mask_truncated_completions` (applied by rova's loss rows).
These keys lived under `stage.*` before; an old `stage.<key>` is refused with the new key named
(rova.config.compose.MOVED_KEYS). The presets (conf/objective/*.yaml) cite where each value comes from
(../shared/docs/methods.md). The defaults are TRL 1.16's GRPOConfig defaults: objective=grpo is what every run
did before the group existed (its loss_type is TRL's default "dapo": token-level normalisation over the batch).

rova's own keys (not TRL's, so not handed to GRPOConfig under their name; rova.training.args):
- `token_weight_alpha` (TW-GRPO, objective=tw_grpo): None = no token weights; a number = each completion token's
  advantage is scaled by its group's weight w_t in [1, alpha] (rova.training.token_weights).
- `advantage_regression` (Reg-GRPO, objective=reg_grpo): TRL's policy loss is replaced by the regression of the
  implicit advantage beta * (rho_i - mean_j rho_j) onto A_i (rova.training.reg_grpo); `beta` is that beta,
  `regression_reference` the pi_ref of rho (`ref` model or `old` policy), `regression_log_ratio` sums or averages
  rho over the tokens.
- DYNAMIC_SAMPLING_KEYS are rova's own, not GRPOConfig's: DAPO's dynamic sampling, read by rova's trainer
  (rova.training.dynamic_sampling); off by default, on in objective=dapo.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from rova.config.checks import _choice, _positive, _unit
from rova.errors import ConfigError

# TRL 1.16 GRPOTrainer._compute_loss's loss types (tests/config/test_objective.py holds them to the installed TRL).
LOSS_TYPES = ("grpo", "bnpo", "dr_grpo", "dapo", "cispo", "sapo", "luspo", "vespo")
# The loss types that clip the ratio to [1 - epsilon, 1 + epsilon_high] (and cap it at delta when set).
CLIPPED_LOSSES = ("grpo", "bnpo", "dr_grpo", "dapo", "luspo")
IMPORTANCE_SAMPLING_LEVELS = ("token", "sequence")
SCALE_REWARDS = ("group", "batch", "none")
# rova's own objective keys (the trainer reads them from VideoGRPOConfig; they are not GRPOConfig's).
DYNAMIC_SAMPLING_KEYS = ("dynamic_sampling", "max_sampling_rounds")
REGRESSION_REFERENCES = ("ref", "old")  # rova.training.reg_grpo.REFERENCES
REGRESSION_LOG_RATIOS = ("sum", "mean")  # rova.training.reg_grpo.LOG_RATIOS
# TRL policy-loss keys the regression loss has no term for, with the value that means "off": another is refused.
REGRESSION_UNUSED = {"epsilon_high": None, "delta": None, "importance_sampling_level": "token",
                     "top_entropy_quantile": 1.0, "entropy_coef": 0.0}


@dataclass
class ObjectiveConfig:
    """The policy loss (TRL GRPOConfig names; rova/config/objective.py says what each is and where it applies)."""

    name: str = "grpo"
    loss_type: str = "dapo"
    beta: float = 0.0
    epsilon: float = 0.2
    epsilon_high: Optional[float] = None  # None = epsilon (TRL); with loss_type=cispo: the cap on the IS weight
    delta: Optional[float] = None  # two-sided clipping (INTELLECT-2): cap on the ratio of negative advantages
    importance_sampling_level: str = "token"
    top_entropy_quantile: float = 1.0
    entropy_coef: float = 0.0
    scale_rewards: str = "group"
    mask_truncated_completions: bool = False
    # DAPO's dynamic sampling (not in TRL; rova.training.dynamic_sampling): groups whose clean rewards are all equal
    # are dropped and their places refilled with freshly drawn prompts, for at most max_sampling_rounds generation
    # rounds per rollout, the first included (verl's algorithm.filter_groups.max_num_gen_batches; its DAPO recipe: 10).
    dynamic_sampling: bool = False
    max_sampling_rounds: int = 10
    token_weight_alpha: Optional[float] = None  # TW-GRPO token weights (None = off); rova's key
    advantage_regression: bool = False  # Reg-GRPO: the regression loss replaces TRL's; rova's key
    regression_reference: str = "ref"  # pi_ref of Reg-GRPO's log-ratio: "ref" model or "old" policy
    regression_log_ratio: str = "sum"  # Reg-GRPO's rho over the tokens: "sum" (the paper) or "mean"

    def __post_init__(self) -> None:
        _choice("objective.loss_type", self.loss_type, LOSS_TYPES)
        _positive("objective.beta", self.beta, allow_zero=True)
        if not 0.0 < self.epsilon < 1.0:
            raise ConfigError("objective.epsilon", f"got {self.epsilon!r}; the clip range must be in (0, 1)")
        if self.epsilon_high is not None:
            _positive("objective.epsilon_high", self.epsilon_high)
        if self.loss_type == "cispo" and (self.epsilon_high is None or self.epsilon_high < 1.0):
            raise ConfigError(
                "objective.epsilon_high",
                f"got {self.epsilon_high!r}; loss_type=cispo caps the importance weight at epsilon_high (TRL), which "
                "must be >= 1 or even on-policy tokens are scaled down (CISPO / ScaleRL: 5.0)",
            )
        if self.delta is not None:
            if self.loss_type not in CLIPPED_LOSSES:
                raise ConfigError("objective.delta", f"only the clipped losses ({', '.join(CLIPPED_LOSSES)}) read it; "
                                  f"loss_type={self.loss_type!r} would ignore it: set it to null")
            if self.delta <= 1.0:
                raise ConfigError("objective.delta", f"got {self.delta!r}; a cap on the ratio must be > 1 "
                                  "(TRL recommends > 1 + epsilon)")
        _choice("objective.importance_sampling_level", self.importance_sampling_level, IMPORTANCE_SAMPLING_LEVELS)
        needs = {"luspo": "sequence", "vespo": "token"}.get(self.loss_type)
        if needs is not None and self.importance_sampling_level != needs:
            raise ConfigError("objective.importance_sampling_level",
                              f"loss_type={self.loss_type!r} is defined on {needs}-level ratios; set it to {needs!r}")
        _unit("objective.top_entropy_quantile", self.top_entropy_quantile)
        _positive("objective.entropy_coef", self.entropy_coef, allow_zero=True)
        _choice("objective.scale_rewards", self.scale_rewards, SCALE_REWARDS)
        self._check_dynamic_sampling()
        self._check_token_weights()
        self._check_advantage_regression()

    def _check_dynamic_sampling(self) -> None:
        if not isinstance(self.dynamic_sampling, bool):
            raise ConfigError("objective.dynamic_sampling", f"got {self.dynamic_sampling!r}; must be true or false")
        rounds = self.max_sampling_rounds
        if not (isinstance(rounds, int) and not isinstance(rounds, bool) and rounds >= 1):
            raise ConfigError(
                "objective.max_sampling_rounds",
                f"got {rounds!r}; must be an integer >= 1 (generation rounds per rollout, the first included; "
                "1 = drop without refilling). There is no 'unlimited' (verl's 0): a policy that solves or fails every "
                "prompt would generate forever",
            )

    def _check_token_weights(self) -> None:
        if self.token_weight_alpha is None:
            return
        if self.token_weight_alpha <= 0:
            raise ConfigError("objective.token_weight_alpha",
                              f"got {self.token_weight_alpha!r}; the token weights lie between 1 and alpha and must stay "
                              "> 0 (a positive weight on the advantage is a weight on the loss): use alpha > 0 "
                              "(TW-GRPO: 1.7), or null for no token weights")

    def _check_advantage_regression(self) -> None:
        _choice("objective.regression_reference", self.regression_reference, REGRESSION_REFERENCES)
        _choice("objective.regression_log_ratio", self.regression_log_ratio, REGRESSION_LOG_RATIOS)
        if not self.advantage_regression:
            return
        if self.beta <= 0:
            raise ConfigError("objective.beta", f"got {self.beta!r}; with advantage_regression it is Reg-GRPO's beta "
                              "(A_hat = beta * (rho - mean rho)) and must be > 0 (DeepVideo-R1: 1.0)")
        if self.token_weight_alpha is not None:
            raise ConfigError("objective.token_weight_alpha", "token weights scale a token-level policy loss; "
                              "advantage_regression's loss is per completion: set it to null")
        for key, off in REGRESSION_UNUSED.items():
            if getattr(self, key) != off:
                raise ConfigError(f"objective.{key}", f"got {getattr(self, key)!r}; advantage_regression replaces "
                                  f"TRL's policy loss, which is what reads it (no clip, ratio or entropy term): "
                                  f"set it to {off!r}")
