"""Image prompts next to video prompts: images skip the shuffled branch; ranks stay in step."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.support.runs import launch, only_run_dir


def mixed_dataset(demo_file: Path, tmp_path: Path, images: int = 4) -> Path:
    """The demo videos plus image questions (real PNGs) in the same Video-R1 file."""
    records = json.loads(demo_file.read_text())
    for record in records:
        record["path"] = str((demo_file.parent / record["path"]).resolve())
    rng = np.random.default_rng(0)
    for i in range(images):
        path = tmp_path / f"image_{i}.png"
        Image.fromarray(rng.integers(0, 256, (96, 128, 3), dtype=np.uint8)).save(path)
        records.append({
            "problem_id": f"img{i}", "problem": "Which colour dominates the picture?", "data_type": "image",
            "problem_type": "multiple choice", "options": ["A. red", "B. green", "C. blue", "D. grey"],
            "solution": "<answer>D</answer>", "path": str(path), "data_source": "test",
        })
    out = tmp_path / "mixed.json"
    out.write_text(json.dumps(records))
    return out


def test_image_groups_skip_the_shuffled_branch(tmp_path, cache_dir, demo_file):
    from tests.support.trainers import make_trainer

    data = mixed_dataset(demo_file, tmp_path)
    trainer, cfg, run_dir = make_trainer(
        cache_dir, tmp_path, "stage=tgrpo", f"data.train_file={data}", "data.build_demo=false", "data.max_samples=null",
        "stage.max_steps=4", "stage.per_device_train_batch_size=8", "stage.num_generations=4",
    )
    trainer.train()
    rollouts = [json.loads(line) for line in (run_dir / "rollouts.jsonl").read_text().splitlines()]
    images = [r for r in rollouts if r["sample_id"].startswith("img")]
    videos = [r for r in rollouts if not r["sample_id"].startswith("img")]
    assert images and videos, "the test needs both kinds of prompt in the run"
    assert all(r["shuffle"] is None for r in images)
    assert all(r["shuffle"] is not None for r in videos)
    assert all(r["corruption"] is not None for r in rollouts)  # images are corrupted too (T = 1 clip)


@pytest.mark.slow
def test_two_ranks_with_mixed_media_stay_in_step(tmp_path, cache_dir, demo_file):
    data = mixed_dataset(demo_file, tmp_path, images=6)
    proc = launch(tmp_path, cache_dir, "stage=tgrpo", "distributed=ddp", "distributed.nproc_per_node=2",
                  f"data.train_file={data}", "data.build_demo=false", "logger=none", "stage.max_steps=6",
                  "stage.per_device_train_batch_size=4", "stage.num_generations=4", timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    run_dir = only_run_dir(tmp_path / "outputs")
    rollouts = [json.loads(line) for line in (run_dir / "rollouts.jsonl").read_text().splitlines()]
    by_step: dict[int, list] = {}
    for r in rollouts:
        by_step.setdefault(r["step"], []).append(r["sample_id"].startswith("img"))
    assert len(by_step) == 6 and all(len(kinds) == 2 for kinds in by_step.values())
    assert any(len(set(kinds)) == 2 for kinds in by_step.values()), "no step mixed an image and a video rank"


def test_zero3_rejects_mixed_media_with_several_prompts_per_process():
    from rova.errors import DataError
    from rova.config.compose import load_typed
    from rova.training.dataset import check_media_mix_for_zero3

    several = load_typed(["distributed=zero3", "stage.per_device_train_batch_size=8", "stage.num_generations=4"])
    with pytest.raises(DataError, match="zero2"):
        check_media_mix_for_zero3(several, {"image", "video"})
    check_media_mix_for_zero3(several, {"video"})  # one kind: every forward calls the tower once
    one = load_typed(["distributed=zero3", "stage.per_device_train_batch_size=4", "stage.num_generations=4"])
    check_media_mix_for_zero3(one, {"image", "video"})
    zero2 = load_typed(["distributed=zero2", "stage.per_device_train_batch_size=8", "stage.num_generations=4"])
    check_media_mix_for_zero3(zero2, {"image", "video"})


@pytest.mark.slow
def test_zero3_mixed_media_one_prompt_per_process(tmp_path, cache_dir, demo_file):
    data = mixed_dataset(demo_file, tmp_path, images=6)
    proc = launch(tmp_path, cache_dir, "stage=tgrpo", "distributed=zero3", "distributed.nproc_per_node=2",
                  f"data.train_file={data}", "data.build_demo=false", "logger=none", "stage.max_steps=4",
                  "stage.per_device_train_batch_size=4", "stage.num_generations=4", timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    run_dir = only_run_dir(tmp_path / "outputs")
    kinds = {json.loads(line)["sample_id"].startswith("img") for line in (run_dir / "rollouts.jsonl").read_text().splitlines()}
    assert kinds == {True, False}
