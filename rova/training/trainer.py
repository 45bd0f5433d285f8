"""VideoGRPOTrainer: TRL 1.16's GRPOTrainer with video in generation and in every log-prob pass.

TRL's GRPOTrainer forwards images but silently drops video in its log-prob passes (the old, reference and
policy forwards run on `<|video_pad|>` embeddings and never call the vision tower). This subclass owns the
rollout (`_generate_and_score_completions`) so that every pass gets the clip, and adds the T-GRPO / ROVA
branches: shuffled frames (temporal reward) and a corrupted clip (its own training group + KL consistency).

Invariant relied on (checked at compose time): each process holds whole prompt groups, i.e.
per_device_train_batch_size x steps_per_generation is a multiple of num_generations. RepeatSampler puts the
G copies of a prompt next to each other, so group g of this process is rows [g*G, (g+1)*G).
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate.utils import gather_object
from trl import GRPOTrainer
from trl.models import unwrap_model_for_generation

from rova.config.schema import RootConfig
from rova.rewards import kl_consistency_loss, kl_reward, sequence_kl
from rova.training.clips import ClipSource, View
from rova.training.scoring import BranchScores, apply_temporal, group_advantages, score_texts, total_reward
from rova.training.visual_inputs import (
    EncodedPrompt,
    encode_prompt,
    left_pad,
    mm_token_type_ids,
    render_prompt,
    right_pad,
    stack_visual,
)
from rova.utils.io import append_jsonl

log = logging.getLogger(__name__)

SHUFFLED, CORRUPTED, CLEAN = "shuffled", "corrupted", "clean"


class VideoGRPOTrainer(GRPOTrainer):
    def __init__(self, *args: Any, rova_cfg: RootConfig, clip_source: ClipSource, run_dir: Path, memory=None, **kwargs: Any):
        self.rova_cfg = rova_cfg
        self.clip_source = clip_source
        self.run_dir = Path(run_dir)
        self.memory = memory
        self._active_visual_rows: list[dict] | None = None
        super().__init__(*args, **kwargs)
        tokenizer = self.processing_class.tokenizer
        self._image_token = tokenizer.convert_tokens_to_ids("<|image_pad|>")
        self._video_token = tokenizer.convert_tokens_to_ids("<|video_pad|>")
        # A completion must never contain vision placeholders: the model would look for clip features for them.
        vision_tokens = ["<|image_pad|>", "<|video_pad|>", "<|vision_start|>", "<|vision_end|>"]
        self.generation_config.suppress_tokens = [tokenizer.convert_tokens_to_ids(t) for t in vision_tokens]
        branches = set(rova_cfg.tgrpo.branches) if rova_cfg.stage.name in ("tgrpo", "memory") else {CLEAN}
        self.branch_sizes = {
            SHUFFLED: rova_cfg.tgrpo.shuffled_generations if SHUFFLED in branches else 0,
            CORRUPTED: rova_cfg.tgrpo.corrupted_generations if CORRUPTED in branches else 0,
        }
        # The KL-consistency reward needs the corrupted view even when the corrupted branch is not generated.
        self.needs_corrupted_view = self.branch_sizes[CORRUPTED] > 0 or rova_cfg.reward.w_kl > 0 or rova_cfg.reward.kl_loss_coef > 0

    # ------------------------------------------------------------------ log-prob passes (video-aware)
    # Override: TRL builds model inputs from image fields only; here each row also brings its video tensors.
    def _get_per_token_logps_and_entropies(
        self, model, input_ids, attention_mask, logits_to_keep, batch_size=None, compute_entropy=False,
        compute_aux_loss=False, visual_rows: list[dict] | None = None, **kwargs: Any,
    ):
        rows = visual_rows if visual_rows is not None else self._active_visual_rows
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
        return {
            "input_ids": ids,
            "attention_mask": mask,
            "mm_token_type_ids": mm_token_type_ids(ids, self._image_token, self._video_token),
            **stack_visual(rows, ids.device),
        }

    # Override: hand the per-row video tensors of this micro-batch to the policy forward, and add the optional
    # auxiliary KL-consistency loss.
    def _compute_loss(self, model, inputs):
        with self._visual_rows(inputs["visual_rows"]):
            loss = super()._compute_loss(model, inputs)
        coef = self.rova_cfg.reward.kl_loss_coef
        if coef > 0 and "corrupted_visual_rows" in inputs:
            loss = loss + self._kl_aux_loss(model, inputs, coef)
        return loss

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
            clean_logits = model(**self._model_inputs(ids, mask, [inputs["visual_rows"][i] for i in idx])).logits
        corr_logits = model(**self._model_inputs(ids, mask, [inputs["corrupted_visual_rows"][i] for i in idx])).logits
        # Logits at position t predict token t+1: the completion span is [-keep-1, -1).
        span = slice(-keep - 1, -1)
        aux = weight * kl_consistency_loss(
            clean_logits[:, span].detach(), corr_logits[:, span], inputs["completion_mask"][idx], kl_loss_coef=coef
        )
        mode = "train" if self.model.training else "eval"
        self._metrics[mode]["kl/aux_loss"].append(self.accelerator.gather(aux.detach()).mean().item())
        return aux / self.current_gradient_accumulation_steps if mode == "train" else aux

    # ------------------------------------------------------------------ rollout
    # Override: the whole rollout, because TRL's version drops video and knows no branches.
    def _generate_and_score_completions(self, inputs: list[dict[str, Any]]) -> dict[str, Any]:
        device = self.accelerator.device
        mode = "train" if self.model.training else "eval"
        group_size = self.num_generations if mode == "train" else self.num_generations_eval
        groups = [inputs[i : i + group_size] for i in range(0, len(inputs), group_size)]
        for group in groups:
            if len(group) != group_size or len({row["sample_id"] for row in group}) != 1:
                raise RuntimeError(
                    "each process must hold whole prompt groups of num_generations consecutive copies; "
                    "check stage.per_device_train_batch_size x steps_per_generation % stage.num_generations == 0"
                )
        step = self.state.global_step
        heads = [group[0] for group in groups]

        # 1. Views and prompt encodings, once per group and branch.
        encoded: dict[str, list[EncodedPrompt | None]] = {CLEAN: [], SHUFFLED: [], CORRUPTED: []}
        views: dict[str, list[View | None]] = {CLEAN: [], SHUFFLED: [], CORRUPTED: []}
        for row in heads:
            text = render_prompt(self.processing_class, row["prompt"])
            clean = self.clip_source.clean(row)
            branch_views = {CLEAN: clean}
            if self.branch_sizes[SHUFFLED] and not clean.is_image:
                branch_views[SHUFFLED] = self.clip_source.shuffled(row, step)
            if self.needs_corrupted_view:
                branch_views[CORRUPTED] = self.clip_source.corrupted(row, step)
            for branch in encoded:
                view = branch_views.get(branch)
                views[branch].append(view)
                encoded[branch].append(
                    encode_prompt(self.processing_class, text, view.frames, view.sample_fps, view.is_image) if view else None
                )

        # 2. Generation rows: every clean row, then G_s shuffled and G_c corrupted rows per group.
        gen_rows: list[tuple[str, int]] = [(CLEAN, g) for g in range(len(groups)) for _ in range(group_size)]
        for branch in (SHUFFLED, CORRUPTED):
            size = self.branch_sizes[branch]
            gen_rows += [(branch, g) for g in range(len(groups)) if encoded[branch][g] is not None for _ in range(size)]
        prompts = [encoded[b][g] for b, g in gen_rows]
        completion_ids = self._generate_rows(prompts)
        texts = self.processing_class.batch_decode(completion_ids, skip_special_tokens=True)

        def rows_of(branch: str) -> list[int]:
            return [i for i, (b, _) in enumerate(gen_rows) if b == branch]

        # 3. Scores per branch, shaped [groups, size].
        def score(branch: str, size: int) -> BranchScores:
            idx = rows_of(branch)
            return score_texts(
                [texts[i] for i in idx],
                [heads[gen_rows[i][1]]["solution"] for i in idx],
                [heads[gen_rows[i][1]]["problem_type"] for i in idx],
                [len(completion_ids[i]) for i in idx],
                size,
                self.rova_cfg.reward,
            )

        reward_cfg = self.rova_cfg.reward
        clean_scores = score(CLEAN, group_size)
        shuffled_acc = np.full((len(groups), max(self.branch_sizes[SHUFFLED], 1)), np.nan)
        shuffled_groups = [g for g in range(len(groups)) if encoded[SHUFFLED][g] is not None]
        if self.branch_sizes[SHUFFLED] and shuffled_groups:
            sh = score(SHUFFLED, self.branch_sizes[SHUFFLED])
            shuffled_acc[shuffled_groups] = sh.accuracy
        p_ordered, p_shuffled = (None, None)
        if self.branch_sizes[SHUFFLED]:
            p_ordered, p_shuffled = apply_temporal(clean_scores, shuffled_acc, reward_cfg)
        corrupted_scores = None
        if self.branch_sizes[CORRUPTED]:
            corrupted_scores = score(CORRUPTED, self.branch_sizes[CORRUPTED])

        clean_idx = rows_of(CLEAN)
        prompt_ids_clean = [encoded[CLEAN][gen_rows[i][1]].input_ids for i in clean_idx]
        clean_visual = [encoded[CLEAN][gen_rows[i][1]].visual for i in clean_idx]
        corrupt_visual_for_clean = (
            [encoded[CORRUPTED][gen_rows[i][1]].visual for i in clean_idx] if self.needs_corrupted_view else None
        )

        # 4. KL consistency: teacher-force each clean completion under the clean and the corrupted clip.
        kl_values = None
        if reward_cfg.w_kl > 0:
            kl_values = self._consistency_kl(
                prompt_ids_clean, [completion_ids[i] for i in clean_idx], clean_visual, corrupt_visual_for_clean
            )
            clean_scores.kl = np.asarray(kl_reward(torch.as_tensor(kl_values), reward_cfg.kl_alpha)).reshape(
                clean_scores.accuracy.shape
            )

        # 5. Total reward and group advantages (each group normalised on its own).
        clean_total = total_reward(clean_scores, reward_cfg)
        adv_parts = [group_advantages(clean_total, self.scale_rewards).reshape(-1)]
        loss_idx = list(clean_idx)
        totals = [clean_total.reshape(-1)]
        if corrupted_scores is not None:
            corrupted_total = total_reward(corrupted_scores, reward_cfg)
            adv_parts.append(group_advantages(corrupted_total, self.scale_rewards).reshape(-1))
            loss_idx += rows_of(CORRUPTED)
            totals.append(corrupted_total.reshape(-1))
        advantages_np = np.concatenate(adv_parts)
        if self.rova_cfg.memory.variance_filter:
            # Groups whose rewards are all equal carry no signal: drop them from the loss (Temporal-R1 / DAPO).
            groups_total = [clean_total] + ([corrupted_total] if corrupted_scores is not None else [])
            flat_zero_std = np.concatenate([np.repeat(t.std(axis=1) == 0, t.shape[1]) for t in groups_total])
            advantages_np = np.where(flat_zero_std, 0.0, advantages_np)
            self._metrics[mode]["variance_filter/dropped_frac"].append(self._gathered_stats(flat_zero_std)[0])
            keep_rows = ~flat_zero_std
        else:
            keep_rows = None

        # 6. Tensors for the loss rows (clean + corrupted branch), with their own clips.
        loss_prompts = [prompts[i] for i in loss_idx]
        prompt_ids, prompt_mask = left_pad([p.input_ids for p in loss_prompts], self._tokenizer.pad_token_id, device)
        comp_ids, comp_mask = right_pad([completion_ids[i] for i in loss_idx], self._tokenizer.pad_token_id, device)
        if keep_rows is not None:
            comp_mask = comp_mask * torch.as_tensor(keep_rows, device=device).unsqueeze(1).long()
        if self.mask_truncated_completions:
            eos_and_pad = {*self.eos_token_ids, self._tokenizer.pad_token_id}
            truncated = torch.tensor([not ids or ids[-1] not in eos_and_pad for ids in (completion_ids[i] for i in loss_idx)], device=device)
            comp_mask = comp_mask * (~truncated).unsqueeze(1).long()
        visual_rows = [p.visual for p in loss_prompts]
        advantages = torch.tensor(advantages_np, dtype=torch.float32, device=device)
        num_items_in_batch = self.accelerator.gather(comp_mask.sum()).sum()
        input_ids = torch.cat([prompt_ids, comp_ids], dim=1)
        attention_mask = torch.cat([prompt_mask, comp_mask], dim=1)
        logits_to_keep = comp_ids.size(1)
        batch_size = self.args.per_device_train_batch_size if mode == "train" else self.args.per_device_eval_batch_size

        old_logps = ref_logps = None
        with torch.no_grad():
            generate_every = self.args.steps_per_generation * self.num_iterations
            if self.args.gradient_accumulation_steps % generate_every != 0:
                old_logps, _, _ = self._get_per_token_logps_and_entropies(
                    self.model, input_ids, attention_mask, logits_to_keep, batch_size, visual_rows=visual_rows
                )
            if self.beta != 0.0:
                ref_logps, _, _ = self._get_per_token_logps_and_entropies(
                    self.ref_model, input_ids, attention_mask, logits_to_keep, batch_size, visual_rows=visual_rows
                )

        # 7. Metrics (gathered: every rank makes the same collective calls in the same order).
        self._log_rollout_metrics(mode, completion_ids, gen_rows, clean_scores, clean_total, corrupted_scores,
                                  p_ordered, p_shuffled, kl_values, views, group_size)
        self._log_rollouts(step, heads, views, gen_rows, texts, clean_scores, clean_total)
        if self.memory is not None and mode == "train":
            self._update_memory(step, heads, views, clean_scores)

        output = {
            "prompt_ids": prompt_ids,
            "prompt_mask": prompt_mask,
            "completion_ids": comp_ids,
            "completion_mask": comp_mask,
            "advantages": advantages,
            "num_items_in_batch": num_items_in_batch,
            "visual_rows": visual_rows,
        }
        if old_logps is not None:
            output["old_per_token_logps"] = old_logps
        if ref_logps is not None:
            output["ref_per_token_logps"] = ref_logps
        if reward_cfg.kl_loss_coef > 0 and corrupt_visual_for_clean is not None:
            n_clean = len(clean_idx)
            output["is_clean_row"] = torch.tensor([i < n_clean for i in range(len(loss_idx))], device=device)
            output["corrupted_visual_rows"] = corrupt_visual_for_clean + [p.visual for p in loss_prompts[n_clean:]]
        return output

    # ------------------------------------------------------------------ generation
    def _generate_rows(self, prompts: list[EncodedPrompt], greedy: bool = False) -> list[list[int]]:
        """Sample one completion per prompt row; all rows in one batch, inside one unwrap (ZeRO-3 safe)."""
        if self.use_vllm:
            from rova.training.vllm_rollout import generate_with_vllm

            return generate_with_vllm(self, prompts, greedy)
        device = self.accelerator.device
        inputs = {}
        if prompts:
            ids, mask = left_pad([p.input_ids for p in prompts], self._tokenizer.pad_token_id, device)
            inputs = {
                "input_ids": ids,
                "attention_mask": mask,
                "mm_token_type_ids": mm_token_type_ids(ids, self._image_token, self._video_token),
                **stack_visual([p.visual for p in prompts], device),
            }
        generation_config = self.generation_config
        if greedy:
            from copy import deepcopy

            generation_config = deepcopy(self.generation_config)
            generation_config.do_sample = False
            generation_config.temperature = None
            generation_config.top_p = None
            generation_config.top_k = None
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
            if not prompts:
                return []
            out = unwrapped_model.generate(**inputs, generation_config=generation_config)
        completions = out[:, inputs["input_ids"].size(1):].cpu()
        eos = set(self.eos_token_ids)
        result = []
        for row in completions.tolist():
            cut = next((i for i, tok in enumerate(row) if tok in eos), None)
            result.append(row[: cut + 1] if cut is not None else row)
        return result

    # ------------------------------------------------------------------ KL consistency
    @torch.no_grad()
    def _consistency_kl(self, prompt_ids, completions, clean_visual, corrupt_visual) -> np.ndarray:
        """KL(P_clean || P_corr) per clean completion: completion positions only, float32, full vocabulary."""
        device = self.accelerator.device
        batch = self.args.per_device_train_batch_size
        values = []
        for start in range(0, len(completions), batch):
            end = min(start + batch, len(completions))
            p_ids, p_mask = left_pad(prompt_ids[start:end], self._tokenizer.pad_token_id, device)
            c_ids, c_mask = right_pad(completions[start:end], self._tokenizer.pad_token_id, device)
            ids, mask = torch.cat([p_ids, c_ids], 1), torch.cat([p_mask, c_mask], 1)
            keep = c_ids.size(1)
            # Logits at position t predict token t+1, so the completion span is [-keep-1, -1).
            span = slice(-keep - 1, -1)
            with self.accelerator.autocast():
                clean = self.model(**self._model_inputs(ids, mask, clean_visual[start:end])).logits[:, span]
                corr = self.model(**self._model_inputs(ids, mask, corrupt_visual[start:end])).logits[:, span]
            kl = sequence_kl(
                clean, corr, c_mask, estimator=self.rova_cfg.reward.kl_estimator,
                topk=self.rova_cfg.reward.kl_topk, sampled_ids=c_ids,
            )
            values.append(kl.cpu())
        return torch.cat(values).numpy() if values else np.zeros(0)

    # ------------------------------------------------------------------ logging
    def _gathered_stats(self, values: np.ndarray) -> tuple[float, float]:
        """Mean and sample std of the finite values over all ranks.

        Ranks may hold different numbers of values (an image group has no shuffled completions), so a
        fixed-size [sum, count, sum of squares] is reduced: every rank makes the same collective call.
        """
        local = np.asarray(values, dtype=np.float64).reshape(-1)
        local = local[np.isfinite(local)]
        stats = torch.tensor([local.sum(), local.size, np.square(local).sum()], dtype=torch.float64,
                             device=self.accelerator.device)
        total, count, squares = self.accelerator.reduce(stats, reduction="sum").tolist()
        if count == 0:
            return float("nan"), float("nan")
        mean = total / count
        variance = max(squares - count * mean * mean, 0.0) / (count - 1) if count > 1 else 0.0
        return mean, variance ** 0.5

    def _log_rollout_metrics(self, mode, completion_ids, gen_rows, clean, clean_total, corrupted, p, p_s, kl, views, G):
        metrics = self._metrics[mode]
        for name in ("accuracy", "format", "length", "temporal", "kl", "iou"):
            mean, std = self._gathered_stats(getattr(clean, name))
            metrics[f"rewards/{name}/mean"].append(mean)
            metrics[f"rewards/{name}/std"].append(std)
        mean, std = self._gathered_stats(clean_total)
        metrics["reward"].append(mean)
        metrics["reward_std"].append(std)
        zero_std = (clean_total.std(axis=1) == 0).astype(np.float64)
        metrics["frac_reward_zero_std"].append(self._gathered_stats(zero_std)[0])
        if corrupted is not None:
            metrics["rewards/accuracy_corrupted/mean"].append(self._gathered_stats(corrupted.accuracy)[0])
        if p is not None:
            metrics["temporal/p"].append(self._gathered_stats(p)[0])
            metrics["temporal/p_shuffled"].append(self._gathered_stats(p_s)[0])
        if kl is not None:
            metrics["kl_consistency/mean"].append(self._gathered_stats(kl)[0])
        counts = {b: sum(1 for r, _ in gen_rows if r == b) for b in (CLEAN, SHUFFLED, CORRUPTED)}
        for branch, count in counts.items():
            total = self.accelerator.gather(torch.tensor([count], device=self.accelerator.device)).sum().item()
            metrics[f"branch/{branch}_completions"].append(float(total))
        lengths = np.array([len(c) for c in completion_ids], dtype=np.float64)
        metrics["completions/mean_length"].append(self._gathered_stats(lengths)[0])
        corrupted_frac = np.array([
            1.0 if v is not None and v.record and v.record.get("family") != "clean" else 0.0
            for v in views[CORRUPTED]
        ]) if views[CORRUPTED] and any(v is not None for v in views[CORRUPTED]) else np.zeros(0)
        metrics["corruption/frac_corrupted"].append(self._gathered_stats(corrupted_frac)[0])
        if mode == "train":
            self.state.num_input_tokens_seen += int(lengths.sum())

    def _log_rollouts(self, step, heads, views, gen_rows, texts, clean, clean_total) -> None:
        """One line per prompt group in rollouts.jsonl: the sample, its corruption record, completions, rewards."""
        records = []
        for g, row in enumerate(heads):
            corrupted = views[CORRUPTED][g] if views[CORRUPTED] else None
            shuffled = views[SHUFFLED][g] if views[SHUFFLED] else None
            first = next(i for i, (b, gg) in enumerate(gen_rows) if b == CLEAN and gg == g)
            records.append({
                "step": step,
                "sample_id": row["sample_id"],
                "problem_type": row["problem_type"],
                "corruption": corrupted.record if corrupted is not None else None,
                "shuffle": shuffled.record if shuffled is not None else None,
                "completion": texts[first][:2000],
                "accuracy": clean.accuracy[g].tolist(),
                "reward": clean_total[g].tolist(),
            })
        gathered = gather_object(records)
        if self.accelerator.is_main_process:
            for record in gathered:
                append_jsonl(self.run_dir / "rollouts.jsonl", record)

    def _update_memory(self, step, heads, views, clean) -> None:
        """Feed the gathered group accuracies to the difficulty memory (identical on every rank)."""
        from rova.training.memory_stage import on_rollout

        local = [
            {
                "sample_id": row["sample_id"],
                "corruption_seed": self.clip_source.corruption_seed(row, step),
                "group_accuracy": float(np.mean(clean.accuracy[g])),
                "replayed": bool(row.get("replayed", False)),
            }
            for g, row in enumerate(heads)
        ]
        on_rollout(self, step, gather_object(local))

    # ------------------------------------------------------------------ memory stage plumbing
    # Override: with a memory attached, a replay sampler (same RepeatSampler invariant) feeds the batches.
    def _get_train_sampler(self, dataset=None):
        if self.memory is None:
            return super()._get_train_sampler(dataset)
        from rova.training.memory_stage import ReplayRepeatSampler

        return ReplayRepeatSampler(
            self,
            dataset if dataset is not None else self.train_dataset,
            mini_repeat_count=self.num_generations,
            batch_size=self.args.generation_batch_size // self.num_generations,
            repeat_count=self.num_iterations * self.args.steps_per_generation,
            seed=self.args.seed,
        )

    # Override: memory.json goes into every checkpoint (and the run dir) so a resume restores the same memory.
    def _save_checkpoint(self, model, trial):
        super()._save_checkpoint(model, trial)
        if self.memory is not None:
            from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

            from rova.training.memory_stage import save_memory

            checkpoint = Path(self._get_output_dir(trial=trial)) / f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}"
            save_memory(self, checkpoint)
