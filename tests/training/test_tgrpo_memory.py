"""stage=tgrpo and stage=memory: branches, every reward component logged, KL consistency, memory resume."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from rova.rewards import kl_reward
from rova.inference.padding import left_pad, right_pad
from rova.inference.prompts import render_prompt
from tests.support.families import encode_prompt
from tests.support.runs import launch, only_run_dir
from tests.support.trainers import make_trainer

from rova.config.branches import CLEAN
from rova.rewards.registry import components_for


def read_metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_tgrpo_launch_generates_every_branch_and_logs_every_component(tmp_path, cache_dir):
    proc = launch(
        tmp_path, cache_dir, "stage=tgrpo", "corruption=weather", "reward.kl_alpha=2", "data.demo_num_clips=8",
        "logger=none", "stage.max_steps=2", "stage.num_generations=4", "stage.per_device_train_batch_size=4",
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    run_dir = only_run_dir(tmp_path / "outputs")
    steps = [m for m in read_metrics(run_dir) if "branch/clean_completions" in m]
    assert len(steps) == 2
    for m in steps:
        # One prompt group per step: G clean, G/2 shuffled, G/2 corrupted completions.
        assert (m["branch/clean_completions"], m["branch/shuffled_completions"], m["branch/corrupted_completions"]) == (4, 2, 2)
        for component in components_for(CLEAN):
            assert f"rewards/clean/{component.name}/mean" in m
        for name in ("rewards/corrupted/accuracy/mean", "reward/clean/mean", "reward/corrupted/mean", "reward/mean"):
            assert name in m
        assert m["rewards/clean/kl/mean"] is not None and 0.0 < m["rewards/clean/kl/mean"] <= 1.0
        assert m["temporal/p"] is not None and m["corruption/frac_corrupted"] == 1.0
    resolved = (run_dir / "resolved.yaml").read_text()
    assert "kl_alpha: 2.0" in resolved and "p_weather: 1.0" in resolved
    rollouts = [json.loads(line) for line in (run_dir / "rollouts.jsonl").read_text().splitlines()]
    assert all(r["corruption"]["family"] == "weather" for r in rollouts)
    assert all(sorted(r["shuffle"]["permutation"]) == list(range(len(r["shuffle"]["permutation"]))) for r in rollouts)


def test_branch_selection_follows_config(tmp_path, cache_dir):
    trainer, cfg, _ = make_trainer(
        cache_dir, tmp_path, "stage=tgrpo", "tgrpo.branches=[clean,corrupted]", "tgrpo.corrupted_generations=3",
        "stage.num_generations=4", "stage.per_device_train_batch_size=4",
    )
    assert trainer.branch_sizes == {"shuffled": 0, "corrupted": 3}


def test_memory_launch_logs_memory_metrics_and_writes_memory_json(tmp_path, cache_dir):
    proc = launch(
        tmp_path, cache_dir, "stage=memory", "data.demo_num_clips=8", "logger=none", "stage.max_steps=4",
        "stage.save_steps=2", "memory.recheck_interval=2", "memory.fail_threshold=0.5",
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    run_dir = only_run_dir(tmp_path / "outputs")
    steps = [m for m in read_metrics(run_dir) if "memory/size" in m]
    assert len(steps) == 4
    for key in ("memory/size", "memory/adds", "memory/solved", "memory/evicted", "memory/replayed"):
        assert all(key in m for m in steps)
    saved = json.loads((run_dir / "memory.json").read_text())
    assert json.loads((run_dir / "checkpoints" / "checkpoint-4" / "memory.json").read_text()) == saved


def _direct_kl(model, ids, mask, visual_clean, visual_corr, keep, completion_mask):
    """KL(P_clean || P_corr) written out by hand: softmax over the full vocabulary at completion positions."""
    from rova.inference.visual import stack_visual
    from rova.models.families.base import mm_token_type_ids

    def logits(visual):
        types = mm_token_type_ids(ids, model.config.image_token_id, model.config.video_token_id)
        return model(input_ids=ids, attention_mask=mask, mm_token_type_ids=types, **stack_visual(visual)).logits

    with torch.no_grad():
        lc = logits(visual_clean)[:, -keep - 1 : -1].double()
        lq = logits(visual_corr)[:, -keep - 1 : -1].double()
    p = lc.softmax(-1)
    kl_tok = (p * (lc.log_softmax(-1) - lq.log_softmax(-1))).sum(-1)
    return ((kl_tok * completion_mask).sum(-1) / completion_mask.sum(-1)).numpy()


def test_kl_consistency_on_the_tiny_model(tmp_path, cache_dir):
    trainer, cfg, _ = make_trainer(cache_dir, tmp_path, "stage=tgrpo", "corruption=rova")
    model, processor = trainer.model, trainer.processing_class
    model.eval()
    row = trainer.train_dataset[0]
    text = render_prompt(processor, row["prompt"])
    clean = trainer.clip_source.clean(row)
    rng = np.random.default_rng(0)
    other = rng.integers(0, 256, clean.frames.shape, dtype=np.uint8)
    enc_clean = encode_prompt(processor, text, clean.frames, clean.sample_fps)
    enc_other = encode_prompt(processor, text, other, clean.sample_fps)
    completions = trainer.generate_rows([enc_clean, enc_clean, enc_clean]).ids
    prompt_ids = [enc_clean.input_ids] * 3

    same = trainer._consistency_kl(prompt_ids, completions, [enc_clean.visual] * 3, [enc_clean.visual] * 3)
    assert np.all(np.abs(same) < 1e-6)
    assert np.allclose(np.asarray(kl_reward(torch.as_tensor(same), 2.0)), 1.0, atol=1e-6)

    different = trainer._consistency_kl(prompt_ids, completions, [enc_clean.visual] * 3, [enc_other.visual] * 3)
    assert np.all(different > 0)
    p_ids, p_mask = left_pad(prompt_ids, processor.tokenizer.pad_token_id)
    c_ids, c_mask = right_pad(completions, processor.tokenizer.pad_token_id)
    ids, mask = torch.cat([p_ids, c_ids], 1), torch.cat([p_mask, c_mask], 1)
    direct = _direct_kl(model, ids, mask, [enc_clean.visual] * 3, [enc_other.visual] * 3, c_ids.size(1), c_mask.double())
    assert np.allclose(different, direct, rtol=1e-4, atol=1e-6), (different, direct)


def test_memory_resume_restores_the_checkpointed_memory(tmp_path, cache_dir):
    proc = launch(
        tmp_path, cache_dir, "stage=memory", "data.demo_num_clips=8", "logger=none", "stage.max_steps=2",
        "stage.save_steps=1", "memory.fail_threshold=0.99",
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    run_dir = only_run_dir(tmp_path / "outputs")
    checkpoint = run_dir / "checkpoints" / "checkpoint-1"
    first = json.loads((checkpoint / "memory.json").read_text())
    trainer, _, _ = make_trainer(cache_dir, tmp_path / "again", "stage=memory", "memory.fail_threshold=0.99",
                                 resume_from=str(checkpoint))
    assert trainer.memory.to_dict() == first
    assert len(trainer.memory) >= 1


def test_a_fresh_memory_never_reads_the_run_dirs_memory_json(tmp_path, cache_dir):
    """Regression: memory.json in the run dir was loaded even with run.resume=false (no checkpoint resumed)."""
    from rova.memory import MemoryView, ReplayMemory

    stale = ReplayMemory()
    stale.state.add(0, "stale-sample", MemoryView.clean(), 0.0)
    (tmp_path / "run").mkdir(parents=True)
    stale.save(tmp_path / "run")
    trainer, _, _ = make_trainer(cache_dir, tmp_path, "stage=memory", "run.resume=false")
    assert len(trainer.memory) == 0


def test_a_checkpoint_that_lost_its_memory_json_is_not_resumed(tmp_path, cache_dir):
    """Regression: a checkpoint without memory.json silently kept an older memory file. Its marker lists
    memory.json, so it is incomplete: skipped with a warning naming it and the file, checkpoint-1 resumed."""
    proc = launch(tmp_path, cache_dir, "stage=memory", "data.demo_num_clips=8", "logger=none", "stage.max_steps=2",
                  "stage.save_steps=1", "memory.fail_threshold=0.99")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    run_dir = only_run_dir(tmp_path / "outputs")
    (run_dir / "checkpoints" / "checkpoint-2" / "memory.json").unlink()
    again = launch(tmp_path, cache_dir, "stage=memory", "data.demo_num_clips=8", "logger=none", "stage.max_steps=3",
                   "stage.save_steps=1", "memory.fail_threshold=0.99", f"run.dir={run_dir}", "run.extend=true")
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    output = again.stdout + again.stderr
    warned = [line for line in output.splitlines() if "checkpoint-2" in line and "memory.json is missing" in line]
    assert warned, output[-3000:]
    assert json.loads((run_dir / "summary.json").read_text())["resumed_from"].endswith("checkpoint-1")


def test_resume_does_not_inflate_replay_counts_and_replays_the_stored_view(tmp_path, cache_dir):
    """Regression: batches skipped on resume called replay selection, inflating counters and entry replays.

    After a run that stops at step 2 and a resume to step 4, every replay counted in memory.json is a
    replayed prompt group that really reached a rollout, and each replay of a corrupted view carried
    exactly the stored corruption.
    """
    common = ("stage=memory", "data.demo_num_clips=8", "logger=none", "stage.save_steps=2", "memory.fail_threshold=0.99",
              "memory.replay_frac=0.5", "stage.per_device_train_batch_size=8", "stage.num_generations=4")
    proc = launch(tmp_path, cache_dir, *common, "stage.max_steps=2")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    run_dir = only_run_dir(tmp_path / "outputs")
    proc = launch(tmp_path, cache_dir, *common, "stage.max_steps=4", f"run.dir={run_dir}", "run.extend=true")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    memory = json.loads((run_dir / "memory.json").read_text())
    rollouts = [json.loads(line) for line in (run_dir / "rollouts.jsonl").read_text().splitlines()]
    replayed = [r for r in rollouts if r["replayed"]]
    assert replayed, "the memory should replay hard samples within 4 steps"
    assert memory["counters"]["replayed"] == len(replayed)
    assert sum(entry["replays"] for entry in memory["entries"]) <= len(replayed)
    for record in replayed:
        view = record["replayed"]
        if view["kind"] == "corrupted" and view["corruption_spec"] is not None:
            assert record["corruption"] == view["corruption_spec"]


def test_auxiliary_kl_loss_is_trained_and_logged(tmp_path, cache_dir):
    trainer, cfg, run_dir = make_trainer(
        cache_dir, tmp_path, "stage=tgrpo", "corruption=weather", "reward.kl_loss_coef=0.5", "stage.max_steps=2",
    )
    trainer.train()
    logged = [m["kl/aux_loss"] for m in read_metrics(run_dir) if "kl/aux_loss" in m]
    assert len(logged) == 2 and all(np.isfinite(v) and v >= 0 for v in logged)
    assert any(v > 0 for v in logged)  # weather always corrupts, so the clean and corrupted clips differ
