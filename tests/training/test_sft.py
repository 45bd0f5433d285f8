"""stage=sft: completion-only labels, the loss they give, and stage runs (SFT -> model/ -> GRPO from it, resume)."""

from __future__ import annotations

import json
import math
from pathlib import Path

from tests.support.runs import launch, only_run_dir
from tests.support.trainers import run_overrides


def _sft_trainer(cache_dir: Path, tmp_path: Path, *extra: str):
    from rova.config.compose import load_typed
    from rova.config.paths import absolutize
    from rova.stages.builders import build_sft_trainer

    cfg = load_typed(run_overrides(cache_dir, tmp_path, "stage=sft", *extra))
    cfg = absolutize(cfg, tmp_path)
    run_dir = tmp_path / "run"
    run_dir.mkdir(parents=True, exist_ok=True)
    trainer, processor, data = build_sft_trainer(cfg, run_dir)
    return trainer, processor, data, cfg


def test_labels_cover_only_the_completion_and_loss_is_completion_cross_entropy(cache_dir, tmp_path):
    import torch
    import torch.nn.functional as F

    trainer, processor, data, _ = _sft_trainer(cache_dir, tmp_path)
    collator = trainer.data_collator
    dataset = data.dataset
    # Two rows of different lengths (prompt + completion), both with video.
    by_length = {}
    for i in range(len(dataset)):
        by_length.setdefault(dataset[i]["length"], i)
    assert len(by_length) >= 2, "demo rows all have one length; the padding check needs two"
    rows = [dataset[i] for i in sorted(by_length.values())[:3]]
    assert all(r["data_type"] == "video" for r in rows)

    encoded = [collator.encode_row(r) for r in rows]
    batch = collator(rows)
    ids, labels, mask = batch["input_ids"], batch["labels"], batch["attention_mask"]
    assert ids.shape[0] == len(rows) and len({len(p) + len(c) for p, c, _ in encoded}) >= 2
    video_token = processor.tokenizer.convert_tokens_to_ids("<|video_pad|>")
    end_of_turn = processor.tokenizer.convert_tokens_to_ids("<|im_end|>")
    for i, (prompt, completion, _) in enumerate(encoded):
        p, n = len(prompt), len(prompt) + len(completion)
        assert ids[i, :n].tolist() == prompt + completion
        assert (labels[i, :p] == -100).all(), "system / user / vision positions carry labels"
        assert labels[i, p:n].tolist() == completion
        assert (labels[i, n:] == -100).all() and (mask[i, n:] == 0).all() and (mask[i, :n] == 1).all()
        assert video_token in prompt and video_token not in completion
        assert completion[-1] == end_of_turn
        text = processor.tokenizer.decode(completion)
        assert text.startswith("<think>") and "</think><answer>" in text and text.endswith("</answer><|im_end|>")
    # Vision placeholders: exactly the video positions, all unlabelled.
    assert ((batch["mm_token_type_ids"] == 2) == (ids == video_token)).all()
    assert (labels[ids == video_token] == -100).all()
    grids = batch["video_grid_thw"]
    assert grids.shape[0] == len(rows)
    assert batch["pixel_values_videos"].shape[0] == int(grids.prod(dim=1).sum())

    model = trainer.model.eval()
    with torch.no_grad():
        loss = model(**batch).loss
        logits = model(**{k: v for k, v in batch.items() if k != "labels"}).logits.float()
    # By hand: logits at t predict token t+1, averaged over completion tokens only.
    predicted, target = logits[:, :-1], ids[:, 1:]
    keep = torch.zeros_like(target, dtype=torch.bool)
    for i, (prompt, completion, _) in enumerate(encoded):
        keep[i, len(prompt) - 1: len(prompt) + len(completion) - 1] = True
    expected = F.cross_entropy(predicted[keep], target[keep])
    assert keep.sum() == sum(len(c) for _, c, _ in encoded)
    assert torch.allclose(loss, expected, atol=1e-5), (loss, expected)


def test_records_without_process_are_skipped_or_trained_on_the_solution(cache_dir, tmp_path):
    from rova.data.records import load_records
    from rova.training.sft import completion_text

    _, _, data, cfg = _sft_trainer(cache_dir, tmp_path, "sft.max_length=100000")
    record = load_records(cfg.data.train_file)[0]
    assert data.no_process == 0 and data.too_long == 0 and len(data.dataset) == data.total
    bare = type(record)(**{**record.__dict__, "process": None})
    assert completion_text(bare, require_process=True, end_of_turn="<|im_end|>") is None
    assert completion_text(bare, require_process=False, end_of_turn="<|im_end|>") == f"{record.solution}<|im_end|>"
    short = min(data.dataset["length"])
    _, _, clipped, _ = _sft_trainer(cache_dir, tmp_path / "short", f"sft.max_length={short}")
    assert clipped.too_long == sum(1 for n in data.dataset["length"] if n > short) > 0
    assert len(clipped.dataset) + clipped.too_long == data.total


def test_gradient_checkpointing_trains(cache_dir, tmp_path):
    trainer, _, _, _ = _sft_trainer(cache_dir, tmp_path, "stage.gradient_checkpointing=true", "stage.max_steps=1",
                                    "stage.per_device_train_batch_size=2", "stage.save_steps=100")
    result = trainer.train()
    assert trainer.model.is_gradient_checkpointing
    assert trainer.state.global_step == 1 and math.isfinite(result.training_loss)


def test_sft_run_saves_a_model_grpo_loads_and_resume_continues(cache_dir, tmp_path):
    batch = 2
    sft = launch(tmp_path, cache_dir, "stage=sft", "data.demo_num_clips=8", "stage.max_steps=2", "logger=none",
                 f"stage.per_device_train_batch_size={batch}", "stage.save_steps=2")
    assert sft.returncode == 0, sft.stdout[-3000:] + sft.stderr[-3000:]
    run_dir = only_run_dir(tmp_path / "outputs")
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["global_step"] == 2 and math.isfinite(summary["train_loss"])
    assert summary["data"]["kept"] == 8
    losses = [json.loads(line).get("loss") for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    losses = [x for x in losses if x is not None]
    assert losses and all(math.isfinite(x) for x in losses)
    model_dir = run_dir / "model"
    assert (model_dir / "config.json").exists() and (run_dir / "checkpoints" / "checkpoint-2").is_dir()

    from rova.config.model import ModelConfig
    from rova.models.loading import load_model_and_processor

    model, processor = load_model_and_processor(ModelConfig(family="qwen2_5_vl", path=str(model_dir)))
    assert model.config.model_type == "qwen2_5_vl" and processor.tokenizer.convert_tokens_to_ids("<|video_pad|>")

    # Resume: the same run dir continues from checkpoint-2 to 3 steps (run.extend: recorded in launches.jsonl).
    resumed = launch(tmp_path, cache_dir, "stage=sft", "data.demo_num_clips=8", "stage.max_steps=3", "logger=none",
                     f"stage.per_device_train_batch_size={batch}", "stage.save_steps=2", f"run.dir={run_dir}",
                     "run.extend=true")
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["global_step"] == 3 and summary["resumed_from"].endswith("checkpoint-2")
    launches = [json.loads(line) for line in (run_dir / "launches.jsonl").read_text().splitlines()]
    assert [entry.get("extended") for entry in launches] == [None, {"stage.max_steps": [2, 3]}]
    steps = [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert {1, 2, 3} <= set(steps)

    grpo_root = tmp_path / "grpo"
    grpo_root.mkdir()
    grpo = launch(grpo_root, cache_dir, "stage=grpo", "data.demo_num_clips=8", "stage.max_steps=1", "logger=none",
                  f"model.path={model_dir}", "model.build_tiny=false")
    assert grpo.returncode == 0, grpo.stdout[-3000:] + grpo.stderr[-3000:]
    grpo_summary = json.loads((only_run_dir(grpo_root / "outputs") / "summary.json").read_text())
    assert grpo_summary["global_step"] == 1
