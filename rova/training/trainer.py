"""VideoGRPOTrainer: TRL 1.16's GRPOTrainer with video in generation and in every log-prob pass.

TRL's GRPOTrainer forwards images but silently drops video in its log-prob passes (the old, reference and
policy forwards run on `<|video_pad|>` embeddings and never call the vision tower). This subclass owns the
rollout (`_generate_and_score_completions`) so that every pass gets the clip, and adds the T-GRPO / ROVA
branches: shuffled frames (temporal reward) and a corrupted clip (its own training group + KL consistency).

The rollout reads as named phases, each small; the pure ones live in `scoring.py` / `rollout_metrics.py`:
  1. views        clean / shuffled / corrupted clip of each prompt group, encoded once per branch (decoded
                  inline, or one generation batch ahead by data.decode_workers threads: prefetch.py)
  2. generate     every row of the generation plan in one batch (HF generate or vLLM)
  3. score        KL consistency (model passes), then the reward registry per branch
     augment      memory.augment_easy / augment_hard (DeepVideo-R1): groups whose clean completions are all right /
                  all wrong are re-rolled once on a corrupted clip / with a hint in the prompt, phases 1-3 again, and
                  replace the originals in the batch (difficulty_augment.py)
     refill       objective.dynamic_sampling (DAPO): groups whose clean rewards are all equal are replaced by
                  groups of freshly drawn prompts, phases 1-3 again, up to max_sampling_rounds (dynamic_sampling.py)
  4. advantages   per branch, each group normalised on its own
  5. loss rows    tensors of the trained rows, with their own clips, old / ref / sampling log-probs
  6. log          per-branch and as-trained metrics, rollouts.jsonl, the difficulty memory

Invariant relied on (checked at compose time): each process holds whole prompt groups, i.e.
per_device_train_batch_size x steps_per_generation is a multiple of num_generations. RepeatSampler puts the
G copies of a prompt next to each other, so group g of this process is rows [g*G, (g+1)*G).
"""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from copy import deepcopy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate.utils import gather_object
from trl import GRPOTrainer
from trl.models import unwrap_model_for_generation

from rova.config.branches import BRANCHES, CLEAN, CORRUPTED, SHUFFLED, TRAINED_BRANCHES
from rova.inference.clips import View
from rova.inference.hf_generation import embedding_rows, generate_ids, prompt_inputs
from rova.inference.padding import left_pad, right_pad
from rova.inference.prompts import render_prompt
from rova.inference.visual import model_inputs, same_visual
from rova.models.families import EncodedPrompt, get_family
from rova.models.vision_sharing import install_shared_vision_encoding
from rova.rewards import kl_consistency_loss, sequence_kl
from rova.training.checkpoints import CompleteCheckpoints
from rova.training.clips import ClipSource
from rova.training.difficulty_augment import EASY, HARD, Selection, agreed_rerolls, padding_groups, select_rerolls, with_hint
from rova.training.difficulty_augment import add_metrics as add_augment_metrics
from rova.training.dynamic_sampling import (Pick, Refill, add_metrics, all_equal_groups, draw_count, merged_kl,
                                           merged_plan, merged_scores, refill_order, take_fresh, take_rows)
from rova.training.importance import importance_sampling_ratio
from rova.training.loop_fixes import LoopFixes
from rova.training.rollout_metrics import MEAN_STD, SUM, MetricValues, rollout_metrics
from rova.inference.seeding import stable_seed
from rova.training.sequence_parallel import SequenceParallelPasses
from rova.training.scoring import (BranchScores, GenerationPlan, LossRows, loss_rows, plan_generation, score_rollout,
                                  shuffle_rewards)
from rova.training.video_grpo_config import VideoGRPOConfig
from rova.utils.io import append_jsonl

log = logging.getLogger(__name__)

def split_groups(inputs: list[dict], group_size: int) -> list[list[dict]]:
    groups = [inputs[i : i + group_size] for i in range(0, len(inputs), group_size)]
    for group in groups:
        if len(group) != group_size or len({row["sample_id"] for row in group}) != 1:
            raise RuntimeError(
                "each process must hold whole prompt groups of num_generations consecutive copies; "
                "check stage.per_device_train_batch_size x steps_per_generation % stage.num_generations == 0"
            )
    return groups


def completion_span_logits(model, model_inputs: dict, completion_length: int) -> torch.Tensor:
    """Logits that predict the completion tokens only: [B, completion_length, V].

    Logits at position t predict token t+1, so the span is [-L-1, -1); `logits_to_keep` makes the model
    project only those positions onto the vocabulary (a long video prompt x 152k vocabulary is GBs per row).
    """
    return model(**model_inputs, logits_to_keep=completion_length + 1).logits[:, :-1]


@dataclass
class Generation:
    """Completion token ids per row (EOS kept, padding cut) and, from vLLM, their sampling log-probs."""

    ids: list[list[int]]
    sampling_logps: list[list[float]] | None = None


@dataclass
class Rollout:
    """Phases 1-3 of one generation round: the prompt groups (one head row each), their views and encoded prompts,
    the generated rows of the plan, and their scores."""

    heads: list[dict]
    views: dict[str, list[View | None]]
    prompts: dict[str, list[EncodedPrompt | None]]
    plan: GenerationPlan
    generation: Generation
    texts: list[str]
    lengths: list[int]
    kl: np.ndarray | None
    scores: dict[str, BranchScores]


def merge_rollouts(rounds: list[Rollout], picks: list[Pick]) -> Rollout:
    """One rollout of the picked (round, group)s, in pick order: every branch of a picked prompt comes with it,
    its rows in the plan's order (clean rows first, group g at rows [g*G, (g+1)*G))."""
    plan, sources = merged_plan([r.plan for r in rounds], picks)
    logps = None
    if any(r.generation.sampling_logps is not None for r in rounds):
        logps = take_rows([r.generation.sampling_logps or [[] for _ in r.generation.ids] for r in rounds], sources)
    return Rollout(
        heads=[rounds[r].heads[g] for r, g in picks],
        views={b: [rounds[r].views[b][g] for r, g in picks] for b in rounds[0].views},
        prompts={b: [rounds[r].prompts[b][g] for r, g in picks] for b in rounds[0].prompts},
        plan=plan,
        generation=Generation(take_rows([r.generation.ids for r in rounds], sources), logps),
        texts=take_rows([r.texts for r in rounds], sources),
        lengths=take_rows([r.lengths for r in rounds], sources),
        kl=merged_kl([r.plan for r in rounds], [r.kl for r in rounds], plan, sources),
        scores=merged_scores([r.scores for r in rounds], picks),
    )


class VideoGRPOTrainer(CompleteCheckpoints, LoopFixes, SequenceParallelPasses, GRPOTrainer):
    """GRPOTrainer on video. Every option comes from `args`, a VideoGRPOConfig (rova.training.args builds it);
    `clip_source` decodes the clips, `memory` is the difficulty memory (or None), `run_dir` gets rollouts.jsonl."""

    args: VideoGRPOConfig

    def __init__(self, *args: Any, clip_source: ClipSource, run_dir: Path, memory=None, **kwargs: Any):
        training_args = kwargs.get("args", args[2] if len(args) > 2 else None)
        if not isinstance(training_args, VideoGRPOConfig):
            raise TypeError(
                f"VideoGRPOTrainer needs args=VideoGRPOConfig (rova.training.args.video_grpo_config), "
                f"got {type(training_args).__name__}"
            )
        self.clip_source = clip_source
        self.run_dir = Path(run_dir)
        self.memory = memory
        self._active_visual_rows: list[dict] | None = None
        super().__init__(*args, **kwargs)
        tokenizer = self.processing_class.tokenizer
        self.family = get_family(self.args.model_family)  # what is model-specific (rova/models/families)
        token_ids = self.family.token_ids(tokenizer)
        self._image_token, self._video_token = token_ids["image_pad"], token_ids["video_pad"]
        # Vision placeholders and the embedding's padding rows are never sampled (HF here, vLLM in vllm_rollout).
        self.banned_token_ids = self.family.banned_token_ids(tokenizer, embedding_rows(self.model))
        self.generation_config.suppress_tokens = list(self.banned_token_ids)
        self.branch_sizes = self.args.branch_sizes()
        reward = self.args.reward
        # The KL-consistency reward and loss need the corrupted view even when the corrupted branch is not generated.
        self.needs_corrupted_view = self.branch_sizes[CORRUPTED] > 0 or reward.w_kl > 0 or reward.kl_loss_coef > 0
        self.share_vision_encoding = bool(self.args.share_vision_encoding)  # rova/models/vision_sharing.py
        if self.share_vision_encoding:
            install_shared_vision_encoding(self.family)
        self.clip_prefetcher = self._make_clip_prefetcher(self.args.decode_workers)
        self._setup_sequence_parallel(self.args.sequence_parallel)  # sequence_parallel.py (N = 1: nothing)
        self._last_rollout_key: tuple[int, int] | None = None  # dynamic sampling's draws are keyed by rollout
        self._dataset_sample_ids: list | None = None

    # ------------------------------------------------------------------ data path (decode ahead: prefetch.py)
    def _make_clip_prefetcher(self, workers: int):
        if workers <= 0:
            return None
        from rova.training.prefetch import ClipPrefetcher

        return ClipPrefetcher(
            self.clip_source, workers, self.num_generations,
            shuffled=self.branch_sizes[SHUFFLED] > 0, corrupted=self.needs_corrupted_view,
        )

    # Override: the training dataloader's collate offers each drawn batch to the decode workers (no earlier draw).
    def get_train_dataloader(self):
        if self.clip_prefetcher is None:
            return super().get_train_dataloader()
        collator = self.data_collator
        self.data_collator = self.clip_prefetcher.collate(collator)
        try:
            return super().get_train_dataloader()
        finally:
            self.data_collator = collator

    # Override: the decode workers stop with training, also when it raises.
    def train(self, *args: Any, **kwargs: Any):
        try:
            return super().train(*args, **kwargs)
        finally:
            if self.clip_prefetcher is not None:
                self.clip_prefetcher.close()

    def _next_generation_step(self) -> int:
        """The global step of the next rollout (a guess for the decode workers: optimizer steps are
        gradient_accumulation_steps micro-steps; a wrong guess only means an inline decode)."""
        accumulation = self.args.gradient_accumulation_steps
        generate_every = self.args.steps_per_generation * self.num_iterations
        return self.state.global_step + (self._step % accumulation + generate_every) // accumulation

    # ------------------------------------------------------------------ log-prob passes (video-aware)
    # Override: TRL builds model inputs from image fields only; here each row also brings its video tensors.
    def _get_per_token_logps_and_entropies(
        self, model, input_ids, attention_mask, logits_to_keep, batch_size=None, compute_entropy=False,
        compute_aux_loss=False, visual_rows: list[dict] | None = None, **kwargs: Any,
    ):
        rows = visual_rows if visual_rows is not None else self._active_visual_rows
        if rows is not None and self.sp is not None:  # one row at a time, its sequence split over the SP group
            return (*self._sharded_logps(model, input_ids, attention_mask, logits_to_keep, rows, compute_entropy), None)
        if rows is None:
            return super()._get_per_token_logps_and_entropies(
                model, input_ids, attention_mask, logits_to_keep, batch_size, compute_entropy, compute_aux_loss, **kwargs
            )
        batch_size = batch_size or input_ids.size(0)
        all_logps, all_entropies = [], []
        for start in range(0, input_ids.size(0), batch_size):
            end = min(start + batch_size, input_ids.size(0))
            ids, mask = input_ids[start:end], attention_mask[start:end]
            model_inputs = self._model_inputs(ids, mask, rows[start:end])
            labels = ids.masked_fill(mask == 0, -100)
            labels[:, :-logits_to_keep] = -100
            with self.accelerator.autocast():
                outputs = model(**model_inputs, labels=labels, fused_lm_head=True)
            all_logps.append(outputs.log_probs[:, -logits_to_keep:])
            if compute_entropy:
                all_entropies.append(outputs.entropy[:, -logits_to_keep:])
        entropies = torch.cat(all_entropies, dim=0) if compute_entropy else None
        return torch.cat(all_logps, dim=0), entropies, None

    def _model_inputs(self, ids: torch.Tensor, mask: torch.Tensor, rows: list[dict]) -> dict[str, torch.Tensor]:
        return model_inputs(ids, mask, rows, image_token=self._image_token, video_token=self._video_token,
                            share_vision_encoding=self.share_vision_encoding, device=ids.device)

    def _completion_logits(self, model, ids, mask, rows, completion_length: int) -> torch.Tensor:
        if self.sp is not None:
            return self._sharded_logits(model, ids, mask, rows, completion_length)
        return completion_span_logits(model, self._model_inputs(ids, mask, rows), completion_length)

    # Override: hand the per-row video tensors of this micro-batch to the policy forward, run Reg-GRPO's loss instead
    # of TRL's when objective.advantage_regression is on, and add the optional auxiliary KL-consistency loss.
    def _compute_loss(self, model, inputs):
        with self._visual_rows(inputs["visual_rows"]):
            if self.args.advantage_regression:
                loss = self._advantage_regression_loss(model, inputs)
            else:
                loss = super()._compute_loss(model, inputs)
        coef = self.args.reward.kl_loss_coef
        if coef > 0 and "corrupted_visual_rows" in inputs:
            loss = loss + self._kl_aux_loss(model, inputs, coef)
        return loss

    def _advantage_regression_loss(self, model, inputs: dict) -> torch.Tensor:
        """Reg-GRPO (rova/training/reg_grpo.py) on this micro-batch, which holds whole groups (checked at compose time:
        rova.config.schema); pi_ref is the reference model's log-probs or the old policy's."""
        from rova.training.reg_grpo import reg_grpo_loss

        completion_mask = inputs["completion_mask"]
        ids = torch.cat([inputs["prompt_ids"], inputs["completion_ids"]], dim=1)
        mask = torch.cat([inputs["prompt_mask"], completion_mask], dim=1)
        logps, entropies, _ = self._get_per_token_logps_and_entropies(
            model, ids, mask, inputs["completion_ids"].size(1), compute_entropy=True
        )
        if self.args.regression_reference == "ref":
            reference = inputs["ref_per_token_logps"]
        else:  # on-policy (one step per rollout) the old policy is this very forward, detached (as TRL does)
            reference = inputs.get("old_per_token_logps")
            reference = logps.detach() if reference is None else reference
        loss, terms = reg_grpo_loss(
            logps, reference, completion_mask, inputs["advantages"], inputs["group_ids"],
            beta=self.args.regression_beta, log_ratio=self.args.regression_log_ratio,
        )
        mode = "train" if self.model.training else "eval"
        metrics = self._metrics[mode]
        metrics["reg_grpo/loss"].append(self.accelerator.gather(loss.detach()).mean().item())
        active = terms.active.cpu().numpy()
        metrics["reg_grpo/log_ratio"].append(self._gathered_stats(terms.log_ratio.cpu().numpy()[active])[0])
        metrics["reg_grpo/implicit_advantage_abs"].append(
            self._gathered_stats(terms.implicit_advantage.abs().cpu().numpy()[active])[0])
        token_mask = completion_mask.bool()
        metrics["entropy"].append(self._gathered_stats(entropies.detach()[token_mask].float().cpu().numpy())[0])
        return loss / self.current_gradient_accumulation_steps if mode == "train" else loss

    @contextmanager
    def _visual_rows(self, rows: list[dict]):
        self._active_visual_rows = rows
        try:
            yield
        finally:
            self._active_visual_rows = None

    def _kl_aux_loss(self, model, inputs: dict, coef: float) -> torch.Tensor:
        """kl_loss_coef * mean_i KL(sg(P_clean) || P_corr) over the clean rows of this micro-batch."""
        # Every rank runs the same forwards and collectives, also when its micro-batch holds no clean row
        # (then one row is pushed through with weight 0).
        is_clean = inputs["is_clean_row"]
        idx = torch.nonzero(is_clean).flatten().tolist() or [0]
        weight = 1.0 if bool(is_clean.any()) else 0.0
        ids = torch.cat([inputs["prompt_ids"], inputs["completion_ids"]], dim=1)[idx]
        mask = torch.cat([inputs["prompt_mask"], inputs["completion_mask"]], dim=1)[idx]
        keep = inputs["completion_ids"].size(1)
        with torch.no_grad():
            clean_logits = self._completion_logits(model, ids, mask, [inputs["visual_rows"][i] for i in idx], keep)
        corr_logits = self._completion_logits(model, ids, mask, [inputs["corrupted_visual_rows"][i] for i in idx], keep)
        aux = weight * kl_consistency_loss(clean_logits, corr_logits, inputs["completion_mask"][idx], kl_loss_coef=coef)
        mode = "train" if self.model.training else "eval"
        self._metrics[mode]["kl/aux_loss"].append(self.accelerator.gather(aux.detach()).mean().item())
        return aux / self.current_gradient_accumulation_steps if mode == "train" else aux

    # ------------------------------------------------------------------ rollout
    # Override: the whole rollout, because TRL's version drops video and knows no branches.
    def _generate_and_score_completions(self, inputs: list[dict[str, Any]]) -> dict[str, Any]:
        mode = "train" if self.model.training else "eval"
        group_size = self.num_generations if mode == "train" else self.num_generations_eval
        heads = [group[0] for group in split_groups(inputs, group_size)]
        step = self.state.global_step
        reward_cfg = self.args.reward
        self._sp_cache.clear()  # the clips of the last rollout are gone (rova.models.sequence_parallel.vision)

        views = self._build_views(heads, step)                                                    # 1. views
        sampled = self._rollout_round(heads, views, group_size)                                   # 2., 3.
        # Every generated round, and the (round, group) in each place of the batch.
        rounds, slots = [sampled], [(0, g) for g in range(len(heads))]
        selection, reroll_round, refill = None, None, None
        if mode == "train" and (self.args.augment_easy or self.args.augment_hard):               # augment
            selection, rerolled = self._augment(sampled, step, group_size)
            if rerolled is not None:
                rounds.append(rerolled)
                reroll_round = len(rounds) - 1
                slots = selection.slots(reroll_round)
        if self.args.dynamic_sampling and mode == "train":                                        # refill
            start = merge_rollouts(rounds, slots) if len(rounds) > 1 else sampled
            drawn, refill = self._refill(start, step, group_size)
            base = len(rounds) - 1  # the refill's round r > 0 is rounds[base + r]; its round 0 is `slots`
            rounds += drawn
            slots = [slots[g] if r == 0 else (base + r, g) for r, g in refill.slots]
        merged = refill is not None or len(rounds) > 1
        rollout = merge_rollouts(rounds, slots) if merged else sampled
        plan, scores = rollout.plan, rollout.scores
        if reward_cfg.shuffle:
            shuffle_rewards(scores, stable_seed(self.args.seed, "shuffle-rewards", step))
        # Dynamic sampling trains what it could not refill masked, as the variance filter does.
        variance_filter = self.args.variance_filter or refill is not None
        rows = loss_rows(                                                                         # 4. advantages
            plan, scores, self.scale_rewards, self._batch_reward_std(scores, plan), variance_filter=variance_filter,
        )
        batch = self._loss_batch(plan, rollout.prompts, rollout.generation, rows, mode)           # 5. loss rows
        metrics = rollout_metrics(                                                                # 6. log
            plan, scores, rows, rollout.lengths, rollout.kl,
            [v.record.get("family", "clean") if v.record else "clean" for v in rollout.views[CORRUPTED] if v is not None]
            if self.needs_corrupted_view else None,
            variance_filter,
        )
        if selection is not None:
            add_augment_metrics(metrics, selection)
        if refill is not None:
            add_metrics(metrics, refill)
        self._log_metrics(mode, metrics)
        self._count_tokens(mode, batch)
        # rollouts.jsonl gets every group generated (a re-roll round's padding aside); the memory all but the re-rolls,
        # whose clip or prompt is not a view it can replay.
        logged = [(r, g) for r, round_ in enumerate(rounds) for g in range(len(round_.heads))
                  if r != reroll_round or g < len(selection.rerolls)]
        generated = merge_rollouts(rounds, logged) if merged else sampled
        extra = None
        if merged or selection is not None:
            extra = [self._rollout_extra(rounds, r, g, slots, selection, reroll_round) for r, g in logged]
        self._log_rollouts(step, generated.heads, generated.views, generated.plan, generated.texts, generated.scores,
                           extra)
        if self.memory is not None and mode == "train":
            remembered = generated
            if reroll_round is not None:
                remembered = merge_rollouts(rounds, [(r, g) for r, g in logged if r != reroll_round])
            self._memory_phase(step, remembered.heads, remembered.views, remembered.scores)
        return batch

    @staticmethod
    def _rollout_extra(rounds: list[Rollout], r: int, g: int, slots: list, selection: Selection | None,
                       reroll_round: int | None) -> dict:
        """What rollouts.jsonl adds to group g of round r with augmentation or dynamic sampling: the generation round,
        whether it is in the batch, and with augmentation the sampled group's difficulty and a re-roll's kind with its
        perturbation record (easy) or hint (hard)."""
        extra: dict[str, Any] = {"round": r, "in_batch": (r, g) in slots}
        if selection is None:
            return extra
        extra["difficulty"] = selection.labels[g] if r == 0 else None
        extra["augment"] = None
        if r == reroll_round:
            reroll = selection.rerolls[g]
            extra["augment"] = reroll.kind
            if reroll.kind == EASY:
                extra["perturbation"] = rounds[r].views[CLEAN][g].record
            else:
                extra["hint"] = reroll.hint
        return extra

    # augment: DeepVideo-R1's difficulty-aware augmentation (rova.training.difficulty_augment has the rules) ----------
    def _augment(self, sampled: Rollout, step: int, group_size: int) -> tuple[Selection, Rollout | None]:
        """(which sampled groups are all right / all wrong and re-rolled, the re-roll round or None). The round runs on
        every process when any process re-rolls, each generating the most any re-rolls (one gather); fewer own
        re-rolls are padded with plain re-generations of this process's groups, generated and discarded."""
        args = self.args
        selection = select_rerolls(sampled.scores[CLEAN].correctness, sampled.heads, augment_easy=args.augment_easy,
                                   augment_hard=args.augment_hard, hint_max_chars=args.hint_max_chars)
        needs = self.accelerator.gather(torch.tensor([len(selection.rerolls)], device=self.accelerator.device))
        count = agreed_rerolls(needs.tolist())
        if count == 0:
            return selection, None
        padding = padding_groups(len(selection.rerolls), count, len(sampled.heads))
        selection.padding = len(padding)
        heads: list[dict] = []
        views: dict[str, list[View | None]] = {branch: [] for branch in sampled.views}
        for g, kind, hint in [*((r.group, r.kind, r.hint) for r in selection.rerolls), *((g, None, None) for g in padding)]:
            head = dict(sampled.heads[g])
            for branch in views:  # the prompt's other views stay this step's
                views[branch].append(sampled.views[branch][g])
            if kind == EASY:
                views[CLEAN][-1] = self.clip_source.perturbed(head, step)
            elif kind == HARD:
                head["prompt"] = with_hint(head["prompt"], hint, args.hint_template)
            if kind is not None:
                head["augment"] = kind
            heads.append(head)
        rerolled = self._rollout_round(heads, views, group_size)
        own = len(selection.rerolls)
        selection.gained = [not equal for equal in all_equal_groups(rerolled.scores[CLEAN].total[:own]).tolist()]
        return selection, rerolled

    def _rollout_round(self, heads: list[dict], views: dict[str, list[View | None]], group_size: int) -> Rollout:
        """Phases 1-3 for these prompt groups: encode their views, generate every row of the plan, score."""
        reward_cfg = self.args.reward
        prompts = self._encode_views(heads, views)
        sizes = {CLEAN: group_size, **self.branch_sizes}
        plan = plan_generation(len(heads), sizes, {b: [p is not None for p in prompts[b]] for b in prompts})
        generation = self.generate_rows([prompts[b][g] for b, g in plan.rows])                  # 2. generate
        texts = self.processing_class.batch_decode(generation.ids, skip_special_tokens=True)
        lengths = [len(ids) for ids in generation.ids]
        kl = self._measure_kl(plan, prompts, generation.ids) if reward_cfg.w_kl > 0 else None     # 3. score
        scores = score_rollout(plan, texts, lengths, heads, reward_cfg, kl)
        return Rollout(heads, views, prompts, plan, generation, texts, lengths, kl, scores)

    # refill: DAPO's dynamic sampling (rova.training.dynamic_sampling has the rules) -------------------------
    def _refill(self, sampled: Rollout, step: int, group_size: int) -> tuple[list[Rollout], Refill]:
        """(the rounds of freshly drawn prompts, in order, and the refill: the batch `sampled` (its round 0) with its
        all-equal groups replaced by drawn groups, Refill.slots). Every process runs the same rounds."""
        rounds = [sampled]
        refill = Refill.start(all_equal_groups(sampled.scores[CLEAN].total))
        key = self._rollout_key(step)
        order = None
        while (count := self._agreed_draw_count(refill)) > 0:
            dataset = self.train_dataset
            if order is None:
                order = refill_order(len(dataset), self.args.seed, key, self.data_rank,
                                     self.data_world)
            sample_ids = self._sample_ids()
            held = {row["sample_id"] for r in rounds for row in r.heads}
            indices = take_fresh(order, count, lambda i: sample_ids[i] in held, patience=len(dataset))
            heads = [dict(dataset[i]) for i in indices]
            drawn = self._rollout_round(heads, self._decode_views(heads, step), group_size)
            refill.add_round(all_equal_groups(drawn.scores[CLEAN].total))
            rounds.append(drawn)
        return rounds[1:], refill

    def _agreed_draw_count(self, refill: Refill) -> int:
        """Prompts to draw in the next round, from every process's open places (one gather), so that every process
        generates the same number of rounds (generation under ZeRO-3 or vLLM is collective)."""
        if refill.rounds >= self.args.max_sampling_rounds:  # the same count on every process: no gather needed
            return 0
        needs = self.accelerator.gather(torch.tensor([refill.need], device=self.accelerator.device))
        return draw_count(needs.tolist(), refill.rounds, self.args.max_sampling_rounds)

    def _rollout_key(self, step: int) -> tuple[int, int]:
        """(global step, rollout at that step): what the draws are seeded by. Several rollouts share a global step
        when steps_per_generation < gradient_accumulation_steps; a resume starts at a step's first rollout."""
        last = self._last_rollout_key
        self._last_rollout_key = (step, last[1] + 1 if last is not None and last[0] == step else 0)
        return self._last_rollout_key

    def _sample_ids(self) -> list:
        if self._dataset_sample_ids is None:
            dataset = self.train_dataset
            ids = getattr(dataset, "sample_ids", None)
            self._dataset_sample_ids = list(ids if ids is not None else dataset["sample_id"])
        return self._dataset_sample_ids

    # 1. views -------------------------------------------------------------------------------------------
    def _build_views(self, heads: list[dict], step: int) -> dict[str, list[View | None]]:
        """The views of each prompt group (decoded here, or by the decode workers); logs the seconds waited."""
        start = time.perf_counter()
        if self.clip_prefetcher is not None and self.model.training:
            per_row = self.clip_prefetcher.take(heads, step, self._next_generation_step())
            views = {branch: [row[branch] for row in per_row] for branch in BRANCHES}
        else:
            views = self._decode_views(heads, step)
        mode = "train" if self.model.training else "eval"
        self._metrics[mode]["perf/data_wait_s"].append(time.perf_counter() - start)
        return views

    def _decode_views(self, heads: list[dict], step: int) -> dict[str, list[View | None]]:
        """The views of each prompt group, decoded here (dynamic sampling's drawn prompts always are)."""
        shuffled, corrupted = self.branch_sizes[SHUFFLED] > 0, self.needs_corrupted_view
        per_row = [self.clip_source.views(row, step, shuffled, corrupted) for row in heads]
        return {branch: [row[branch] for row in per_row] for branch in BRANCHES}

    def _encode_views(self, heads: list[dict], views: dict[str, list[View | None]]) -> dict[str, list[EncodedPrompt | None]]:
        texts = [render_prompt(self.processing_class, row["prompt"]) for row in heads]
        return {
            branch: [
                self.family.encode(self.processing_class, text, v.frames, v.timing, v.is_image) if v is not None else None
                for text, v in zip(texts, branch_views)
            ]
            for branch, branch_views in views.items()
        }

    # 2. generate ----------------------------------------------------------------------------------------
    def generate_rows(self, prompts: list[EncodedPrompt], greedy: bool = False) -> Generation:
        """Sample one completion per prompt row; all rows in one batch, inside one unwrap (ZeRO-3 safe)."""
        if self.use_vllm:
            from rova.training.vllm_rollout import generate_with_vllm

            ids, logps = generate_with_vllm(self, prompts, greedy)
            return Generation(ids, logps)
        inputs = prompt_inputs(
            prompts, pad_id=self._tokenizer.pad_token_id, image_token=self._image_token, video_token=self._video_token,
            share_vision_encoding=self.share_vision_encoding, device=self.accelerator.device,
        ) if prompts else {}
        generation_config = self.generation_config
        if greedy:
            generation_config = deepcopy(self.generation_config)
            generation_config.do_sample = False
            generation_config.temperature = generation_config.top_p = generation_config.top_k = None
        with (
            unwrap_model_for_generation(
                self.model_wrapped,
                self.accelerator,
                gather_deepspeed3_params=self.args.ds3_gather_for_generation,
                generation_kwargs=self.generation_kwargs,
                gradient_checkpointing_kwargs=self.args.gradient_checkpointing_kwargs,
            ) as unwrapped_model,
            torch.no_grad(),
        ):
            # Every rank enters the unwrap (ZeRO-3 gathers there), even with nothing to generate; in an SP group only
            # the first rank generates (sequence_parallel.py) and the others receive its completions.
            generation = Generation([])
            encodings = self._encode_for_generation(unwrapped_model, inputs) if prompts else None  # MR-SP (SP only)
            if prompts and self._generates_here():
                # The one HF generate call (rova.inference.hf_generation), with TRL's generation config.
                with self._replaying_vision(unwrapped_model, encodings):
                    generation = Generation(generate_ids(unwrapped_model, inputs, generation_config, self.eos_token_ids))
        return self.share_generation(generation)

    # 3. score: KL consistency ---------------------------------------------------------------------------
    def _measure_kl(self, plan: GenerationPlan, prompts: dict, completions: list[list[int]]) -> np.ndarray:
        """KL(P_clean || P_corr) of every clean completion, teacher-forced under its clean and corrupted clip."""
        clean_rows = plan.indices(CLEAN)
        groups = [plan.rows[i][1] for i in clean_rows]
        return self._consistency_kl(
            [prompts[CLEAN][g].input_ids for g in groups], [completions[i] for i in clean_rows],
            [prompts[CLEAN][g].visual for g in groups], [prompts[CORRUPTED][g].visual for g in groups],
        )

    @torch.no_grad()
    def _consistency_kl(self, prompt_ids, completions, clean_visual, corrupt_visual) -> np.ndarray:
        """KL(P_clean || P_corr) per completion: completion positions only, float32, full vocabulary."""
        device = self.accelerator.device
        batch = self.args.per_device_train_batch_size
        values = []
        for start, skip in zip(range(0, len(completions), batch), self._clean_clip_chunks(clean_visual, corrupt_visual)):
            end = min(start + batch, len(completions))
            if skip:
                # Every row's corrupted clip is its clean clip (a mix draws no corruption for some clips): both
                # forwards would see the same inputs and give the same logits, so each KL is exactly 0.
                values.append(torch.zeros(end - start, dtype=torch.float32))
                continue
            p_ids, p_mask = left_pad(prompt_ids[start:end], self._tokenizer.pad_token_id, device)
            c_ids, c_mask = right_pad(completions[start:end], self._tokenizer.pad_token_id, device)
            ids, mask = torch.cat([p_ids, c_ids], 1), torch.cat([p_mask, c_mask], 1)
            keep = c_ids.size(1)
            with self.accelerator.autocast():
                clean = self._completion_logits(self.model, ids, mask, clean_visual[start:end], keep)
                corr = self._completion_logits(self.model, ids, mask, corrupt_visual[start:end], keep)
            kl = sequence_kl(
                clean, corr, c_mask, estimator=self.args.reward.kl_estimator,
                topk=self.args.reward.kl_topk, sampled_ids=c_ids,
            )
            values.append(kl.cpu())
        return torch.cat(values).numpy() if values else np.zeros(0)

    def _clean_clip_chunks(self, clean_visual: list[dict], corrupt_visual: list[dict]) -> list[bool]:
        """Per chunk of per_device_train_batch_size rows: whether every row's corrupted clip equals its clean clip.
        With several processes a chunk is skipped only where it is on every process (the forwards gather ZeRO-3's
        parameters: every rank must run the same ones)."""
        batch = self.args.per_device_train_batch_size
        same: dict[tuple[int, int], bool] = {}  # the G rows of a group hold the same two clips: compare them once
        for a, b in zip(clean_visual, corrupt_visual):
            if (id(a), id(b)) not in same:
                same[id(a), id(b)] = same_visual(a, b)
        skips = [all(same[id(a), id(b)] for a, b in zip(clean_visual[s : s + batch], corrupt_visual[s : s + batch]))
                 for s in range(0, len(clean_visual), batch)]
        if self.accelerator.num_processes > 1:
            local = torch.tensor(skips, dtype=torch.long, device=self.accelerator.device)
            everywhere = self.accelerator.pad_across_processes(local, dim=0, pad_index=0)
            gathered = self.accelerator.gather(everywhere).reshape(self.accelerator.num_processes, -1)
            skips = gathered.all(dim=0).tolist()[: len(skips)]
        return skips

    # 4. advantages --------------------------------------------------------------------------------------
    def _batch_reward_std(self, scores: dict[str, BranchScores], plan: GenerationPlan) -> dict[str, float] | None:
        """scale_rewards=batch: the std of each trained branch's rewards over ALL processes (as TRL does)."""
        if self.scale_rewards != "batch":
            return None
        stds = {}
        for branch in TRAINED_BRANCHES:
            if plan.sizes.get(branch, 0) > 0:
                total = scores[branch].total if branch in scores else np.zeros(0)
                stds[branch] = self._gathered_stats(total)[1]
        return stds

    # 5. loss rows ---------------------------------------------------------------------------------------
    def _loss_batch(self, plan: GenerationPlan, prompts: dict, generation: Generation, rows: LossRows, mode: str) -> dict:
        device = self.accelerator.device
        loss_prompts = [prompts[plan.rows[i][0]][plan.rows[i][1]] for i in rows.indices]
        completions = [generation.ids[i] for i in rows.indices]
        prompt_ids, prompt_mask = left_pad([p.input_ids for p in loss_prompts], self._tokenizer.pad_token_id, device)
        comp_ids, comp_mask = right_pad(completions, self._tokenizer.pad_token_id, device)
        comp_mask = comp_mask * torch.as_tensor(rows.keep, device=device).unsqueeze(1).long()
        if self.mask_truncated_completions:
            eos_and_pad = {*self.eos_token_ids, self._tokenizer.pad_token_id}
            truncated = torch.tensor([not ids or ids[-1] not in eos_and_pad for ids in completions], device=device)
            comp_mask = comp_mask * (~truncated).unsqueeze(1).long()
        visual_rows = [p.visual for p in loss_prompts]
        input_ids = torch.cat([prompt_ids, comp_ids], dim=1)
        attention_mask = torch.cat([prompt_mask, comp_mask], dim=1)
        logits_to_keep = comp_ids.size(1)
        batch_size = self.args.per_device_train_batch_size if mode == "train" else self.args.per_device_eval_batch_size
        output: dict[str, Any] = {
            "prompt_ids": prompt_ids,
            "prompt_mask": prompt_mask,
            "completion_ids": comp_ids,
            "completion_mask": comp_mask,
            "advantages": torch.tensor(rows.advantages, dtype=torch.float32, device=device),
            "num_items_in_batch": self.accelerator.gather(comp_mask.sum()).sum(),
            "visual_rows": visual_rows,
        }
        self._objective_inputs(output, [plan.rows[i] for i in rows.indices], [len(c) for c in completions], mode)
        correct_sampling = self.use_vllm and self.vllm_importance_sampling_correction
        with torch.no_grad():
            generate_every = self.args.steps_per_generation * self.num_iterations
            if self.args.gradient_accumulation_steps % generate_every != 0 or correct_sampling:
                output["old_per_token_logps"], _, _ = self._get_per_token_logps_and_entropies(
                    self.model, input_ids, attention_mask, logits_to_keep, batch_size, visual_rows=visual_rows
                )
            if self.beta != 0.0:
                with self._reference_model() as ref_model:
                    output["ref_per_token_logps"], _, _ = self._get_per_token_logps_and_entropies(
                        ref_model, input_ids, attention_mask, logits_to_keep, batch_size, visual_rows=visual_rows
                    )
        if correct_sampling:
            sampling = torch.full(comp_ids.shape, float("nan"), device=device)
            for r, i in enumerate(rows.indices):
                logps = (generation.sampling_logps or [[]] * (i + 1))[i]
                sampling[r, : len(logps)] = torch.tensor(logps, dtype=torch.float32, device=device)
            output["sampling_per_token_logps"] = sampling
            ratio = importance_sampling_ratio(
                output["old_per_token_logps"], sampling, comp_mask, self.vllm_importance_sampling_mode,
                self.vllm_importance_sampling_clip_min, self.vllm_importance_sampling_clip_max,
            )
            output["importance_sampling_ratio"] = ratio
            values = ratio.flatten() if ratio.size(1) == 1 else ratio[comp_mask.bool()]
            mean, _ = self._gathered_stats(values.cpu().numpy())
            self._metrics[mode]["sampling/importance_sampling_ratio/mean"].append(mean)
        if self.args.reward.kl_loss_coef > 0 and self.needs_corrupted_view:
            corrupted_of = [prompts[CORRUPTED][plan.rows[i][1]].visual for i in rows.indices]
            # Clean rows compare against their group's corrupted clip; corrupted rows already carry it.
            output["is_clean_row"] = torch.tensor([r < rows.num_clean for r in range(len(rows.indices))], device=device)
            output["corrupted_visual_rows"] = corrupted_of
        return output

    def _prepare_inputs(self, generation_batch: dict[str, Any]) -> dict[str, Any]:
        """TRL's buffering of a rollout's micro-batches; under Reg-GRPO with several micro-batches per rollout the
        rows are shuffled by whole groups (rova.training.group_shuffle), not one by one, so no group is split."""
        steps = self.args.steps_per_generation
        if not (self.model.training and self.args.advantage_regression and steps > 1):
            return super()._prepare_inputs(generation_batch)
        from trl.trainer.utils import split_pixel_values_by_grid, split_tensor_dict, unsplit_pixel_values_by_grid

        from rova.training.group_shuffle import permute_rows, whole_group_order

        if self._step % (steps * self.num_iterations) == 0 or self._buffered_inputs is None:
            batch = split_pixel_values_by_grid(self._generate_and_score_completions(generation_batch))
            batch = permute_rows(batch, whole_group_order(batch["group_ids"], steps))
            self._buffered_inputs = [unsplit_pixel_values_by_grid(chunk) for chunk in split_tensor_dict(batch, steps)]
        return self._buffered_inputs[self._step % steps]

    def _objective_inputs(self, batch: dict, groups: list[tuple[str, int]], lengths: list[int], mode: str) -> None:
        """What objective=tw_grpo / reg_grpo add to the loss batch. `groups` is the (branch, prompt group) of each loss
        row, `lengths` its completion's length (EOS included, before any loss mask).

        Reg-GRPO: each row's group id (TRL shuffles the rows; the loss needs each group's rows). TW-GRPO: the
        advantages become [rows, T], A_i * w_t * mask: since w_t > 0 this equals weighting each token's loss by w_t
        for TRL's losses (each is A times a factor that reads A's sign only; tests/training/test_token_weights.py).
        """
        device = batch["completion_ids"].device
        if self.args.advantage_regression:
            number = {key: n for n, key in enumerate(dict.fromkeys(groups))}
            batch["group_ids"] = torch.tensor([number[key] for key in groups], dtype=torch.long, device=device)
        if self.args.token_weight_alpha is not None:
            batch_size = self.args.per_device_train_batch_size if mode == "train" else self.args.per_device_eval_batch_size
            weights = self._token_weights(batch, groups, lengths, batch_size) * batch["completion_mask"]
            batch["advantages"] = batch["advantages"].unsqueeze(1) * weights
            kept = batch["completion_mask"].bool()
            self._metrics[mode]["token_weights/mean"].append(self._gathered_stats(weights[kept].cpu().numpy())[0])

    @torch.no_grad()
    def _token_weights(self, batch: dict, groups: list[tuple[str, int]], lengths: list[int], batch_size: int
                       ) -> torch.Tensor:
        """TW-GRPO's weights w_t of every loss row [rows, T] (rova/training/token_weights.py): a no-grad policy pass
        over each group's rows (`batch_size` rows per forward, as the other passes), keeping only the final hidden
        states of the completion span; the vocabulary projection then runs `chunk` positions at a time, so no
        [rows, T, V] tensor exists."""
        from rova.training.token_weights import chunk_positions, group_token_weights, lm_head_log_probs

        comp_ids = batch["completion_ids"]
        device, width = comp_ids.device, comp_ids.size(1)
        lengths_t = torch.tensor(lengths, dtype=torch.long, device=device)
        # The attention sees every completion token, also of rows the loss masks (their distributions still count).
        completion_attention = (torch.arange(width, device=device).unsqueeze(0) < lengths_t.unsqueeze(1)).long()
        weights = torch.zeros(comp_ids.shape, dtype=torch.float32, device=device)
        backbone, lm_head = self._backbone_and_head()
        vocab = getattr(lm_head, "out_features", None) or self.model.config.get_text_config().vocab_size
        members: dict[tuple[str, int], list[int]] = {}
        for row, key in enumerate(groups):
            members.setdefault(key, []).append(row)
        for rows in members.values():
            idx = torch.tensor(rows, dtype=torch.long, device=device)
            longest = int(lengths_t[idx].max().item())
            if longest == 0:
                continue
            ids = torch.cat([batch["prompt_ids"][idx], comp_ids[idx]], dim=1)
            mask = torch.cat([batch["prompt_mask"][idx], completion_attention[idx]], dim=1)
            visual = [batch["visual_rows"][r] for r in rows]
            with self.accelerator.autocast():
                # Hidden state t predicts token t + 1: these predict the completion's first `longest` tokens.
                hidden = torch.cat([
                    backbone(**self._model_inputs(ids[s : s + batch_size], mask[s : s + batch_size],
                                                  visual[s : s + batch_size]), use_cache=False)
                    .last_hidden_state[:, -width - 1 : -width - 1 + longest]
                    for s in range(0, len(rows), batch_size)
                ])
                w = group_token_weights(lm_head_log_probs(hidden, lm_head, self.temperature), lengths_t[idx],
                                        self.args.token_weight_alpha, chunk_positions(len(rows), vocab))
            weights[idx, :longest] = w.float().unsqueeze(0)
        return weights

    def _backbone_and_head(self):
        """The policy's language backbone (final hidden states, adapters active) and its vocabulary projection, as
        TRL's fused LM head calls them."""
        model = self.accelerator.unwrap_model(self.model)
        if hasattr(model, "peft_config") and hasattr(model, "get_base_model"):
            model = model.get_base_model()
        return model.base_model, model.get_output_embeddings()

    @contextmanager
    def _reference_model(self):
        """The model of the reference pass: TRL's ref_model, or with LoRA (TRL builds none) the policy with its
        adapter disabled -- or switched to TRL's "ref" adapter copy when there is one -- as TRL's rollout does."""
        if self.ref_model is not None:
            yield self.ref_model
            return
        from trl.trainer.utils import use_adapter

        unwrapped = self.accelerator.unwrap_model(self.model)
        with use_adapter(unwrapped, adapter_name="ref" if "ref" in unwrapped.peft_config else None):
            yield self.model

    # 6. log ---------------------------------------------------------------------------------------------
    def _gathered_stats(self, values: np.ndarray) -> tuple[float, float]:
        """Mean and sample std of the finite values over all ranks.

        Ranks may hold different numbers of values (an image group has no shuffled completions), so a
        fixed-size [sum, count, sum of squares] is reduced: every rank makes the same collective call.
        """
        local = np.asarray(values if self.reports else [], dtype=np.float64).reshape(-1)
        local = local[np.isfinite(local)]
        stats = torch.tensor([local.sum(), local.size, np.square(local).sum()], dtype=torch.float64,
                             device=self.accelerator.device)
        total, count, squares = self.accelerator.reduce(stats, reduction="sum").tolist()
        if count == 0:
            return float("nan"), float("nan")
        mean = total / count
        variance = max(squares - count * mean * mean, 0.0) / (count - 1) if count > 1 else 0.0
        return mean, variance ** 0.5

    def _log_metrics(self, mode: str, values: MetricValues) -> None:
        metrics = self._metrics[mode]
        for name in sorted(values.values):  # the same names, in the same order, on every rank
            array, kind = values.values[name]
            mean, std = self._gathered_stats(array)
            if kind == SUM:
                metrics[name].append(0.0 if np.isnan(mean) else mean * self._gathered_count(array))
            elif kind == MEAN_STD:
                metrics[f"{name}/mean"].append(mean)
                metrics[f"{name}/std"].append(std)
            else:
                metrics[name].append(mean)

    def _gathered_count(self, values: np.ndarray) -> int:
        local = np.asarray(values if self.reports else [], dtype=np.float64)
        count = torch.tensor([float(np.isfinite(local).sum())], dtype=torch.float64, device=self.accelerator.device)
        return int(self.accelerator.reduce(count, reduction="sum").item())

    def _count_tokens(self, mode: str, batch: dict) -> None:
        """Tokens that entered the loss passes (prompt with its vision placeholders + completion), all processes."""
        tokens = (batch["prompt_mask"].sum() + batch["completion_mask"].sum()) * int(self.reports)
        total = int(self.accelerator.gather(tokens.reshape(1)).sum().item())
        if mode == "train":
            self.state.num_input_tokens_seen += total
        self._metrics[mode]["num_tokens"] = [self.state.num_input_tokens_seen]

    def _log_rollouts(self, step, heads, views, plan: GenerationPlan, texts, scores: dict[str, BranchScores],
                      extra: list[dict] | None = None) -> None:
        """One line per prompt group in rollouts.jsonl: the sample, its corruption record, completions, rewards
        (with dynamic sampling, every group generated, `extra` saying its round and whether it entered the batch)."""
        clean = scores[CLEAN]
        clean_rows = plan.indices(CLEAN)
        size = plan.sizes[CLEAN]
        records = []
        for g, row in enumerate(heads):
            corrupted, shuffled = views[CORRUPTED][g], views[SHUFFLED][g]
            record = {
                "step": step,
                "sample_id": row["sample_id"],
                "problem_type": row["problem_type"],
                "replayed": row.get("replay_view"),
                "corruption": corrupted.record if corrupted is not None else None,
                "shuffle": shuffled.record if shuffled is not None else None,
                "completion": texts[clean_rows[g * size]][:2000],
                "accuracy": clean.correctness[g].tolist(),
                "reward": clean.total[g].tolist(),
            }
            if CORRUPTED in scores and g in scores[CORRUPTED].groups:
                k = scores[CORRUPTED].groups.index(g)
                record["accuracy_corrupted"] = scores[CORRUPTED].correctness[k].tolist()
            if extra is not None:
                record.update(extra[g])
            records.append(record)
        gathered = gather_object(records if self.reports else [])
        if self.accelerator.is_main_process:
            for record in gathered:
                append_jsonl(self.run_dir / "rollouts.jsonl", record)

    # ------------------------------------------------------------------ difficulty memory
    def _memory_phase(self, step: int, heads: list[dict], views: dict, scores: dict[str, BranchScores]) -> None:
        from rova.training.memory_hooks import memory_phase

        memory_phase(self, step, heads, views, scores)

    # Override: with a memory attached, a replay sampler, and with data.task_mixing=per_batch, a single-kind one
    # (both keep RepeatSampler's invariant) feed the batches.
    def _get_train_sampler(self, dataset=None):
        per_batch = self.args.task_mixing == "per_batch"
        if self.memory is None and not per_batch and self.sp is None:
            return super()._get_train_sampler(dataset)
        dataset = dataset if dataset is not None else self.train_dataset
        prompts = self._prompts_per_generation()  # over the data-parallel ranks (an SP group counts once)
        repeats = dict(mini_repeat_count=self.num_generations, batch_size=prompts,
                       repeat_count=self.num_iterations * self.args.steps_per_generation, seed=self.args.seed)
        if self.memory is None and not per_batch:
            from trl.trainer.grpo_trainer import RepeatSampler

            return self._shared_by_group(RepeatSampler(data_source=dataset, shuffle=self.shuffle_dataset, **repeats))
        kinds = None
        if per_batch:
            from rova.rewards import canonical_problem_type

            rows = dataset.base if self.memory is not None else dataset  # the ReplayDataset's base rows
            kinds = [canonical_problem_type(t) for t in rows["problem_type"]]
        if self.memory is not None:
            from rova.memory import ReplayRepeatSampler

            return self._shared_by_group(ReplayRepeatSampler(dataset.sample_ids, self.memory, kinds=kinds, **repeats))
        from rova.training.task_mixing import SingleKindRepeatSampler

        return self._shared_by_group(SingleKindRepeatSampler(kinds, group_size=prompts // self.data_world, **repeats))

    # Hook of CompleteCheckpoints: memory.json goes into every checkpoint (and the run dir), before its marker,
    # so a resume restores the same memory.
    def _save_checkpoint_side_files(self, checkpoint: Path) -> None:
        if self.memory is not None and self.accelerator.is_main_process:
            self.memory.save(self.run_dir, checkpoint)
