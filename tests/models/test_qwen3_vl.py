"""Qwen3-VL: timestamps in the prompt are the sampled frames' true times (clean, shuffled, frame-dropped views),
vLLM requests match the HF path, and every stage runs on the tiny Qwen3-VL as on the tiny Qwen2.5-VL."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

from rova.config.corruption import CorruptionConfig
from rova.config.data import FrameSamplingConfig
from rova.data.video import read_clip
from rova.models.families import get_family
from rova.training.clips import ClipSource
from rova.inference.prompts import render_prompt
from tests.conftest import shared_data_or_skip
from tests.support.runs import launch, only_run_dir

QWEN3 = get_family("qwen3_vl")
# Video-R1's training sampling (2 fps, 4..16 frames), sides in multiples of Qwen3-VL's 32.
SAMPLING = FrameSamplingConfig(2.0, 4, 16, 32 * 32 * 4, 32 * 32 * 16, 32 * 32 * 16 * 16, image_factor=QWEN3.frame_factor)
TIME_LABEL = re.compile(r"<(\d+\.\d) seconds>")
MESSAGES = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "What happens first?"}]}]


@pytest.fixture(scope="module")
def processor(tiny_qwen3_model_dir):
    from transformers import AutoProcessor

    return AutoProcessor.from_pretrained(tiny_qwen3_model_dir)


def _labels(processor, encoded) -> list[str]:
    return TIME_LABEL.findall(processor.tokenizer.decode(encoded.input_ids))


def _pts_seconds(path, indices) -> np.ndarray:
    """Presentation time of each frame, read from the container (independent of rova's index / fps arithmetic)."""
    from rova.data.decord_import import decord_module

    decord = decord_module()

    reader = decord.VideoReader(str(path))
    return np.asarray([reader.get_frame_timestamp(int(i))[0] for i in indices], dtype=np.float64)


@pytest.mark.parametrize("segment", [None, (2.0, 6.0)], ids=["whole", "segment"])
def test_prompt_times_are_the_true_times_of_the_sampled_frames(processor, segment):
    path = shared_data_or_skip("videos", "video_r1_example.mp4")
    clip = read_clip(path, SAMPLING, segment=segment)
    encoded = QWEN3.encode(processor, render_prompt(processor, MESSAGES), clip.frames, clip.timing)
    labels = _labels(processor, encoded)
    times = _pts_seconds(path, clip.indices)
    assert len(labels) == clip.nframes // 2 == int(encoded.visual["video_grid_thw"][0, 0])
    # One label per temporal patch (2 frames): the mean time of its two frames, to 0.1 s.
    expected = (times[0::2] + times[1::2]) / 2
    assert np.abs(np.asarray(labels, dtype=float) - expected).max() <= 0.05 + 1e-6, (labels, expected)
    if segment is not None:  # times in the source's clock, not restarted at the segment start
        assert float(labels[0]) >= segment[0] - 0.5
    assert encoded.video_metadata["frames_indices"] == clip.indices.tolist()
    assert encoded.video_metadata["fps"] == pytest.approx(clip.source_fps)


def test_shuffled_and_frame_dropped_views_carry_the_clean_time_labels(processor, tmp_path):
    """Decision (rova/models/families/base.py): views change pixels, never time labels, so a shuffled clip shows
    ordered labels over shuffled frames (nothing about the permutation leaks) and a dropped frame is shown at
    the time of the frame it replaces."""
    path = shared_data_or_skip("videos", "video_r1_example.mp4")
    drop = CorruptionConfig(p_temporal=1.0, severity=[5, 5])
    source = ClipSource(SAMPLING, "decord", drop, seed=0)
    row = {"media_path": str(path), "data_type": "video", "sample_id": "s0"}
    views = source.views(row, step=3, shuffled=True, corrupted=True)
    clean, shuffled, dropped = views["clean"], views["shuffled"], views["corrupted"]
    assert dropped.record["variant"] == "frame_drop"
    assert shuffled.record["permutation"] != sorted(shuffled.record["permutation"])
    assert not np.array_equal(shuffled.frames, clean.frames) and not np.array_equal(dropped.frames, clean.frames)
    text = render_prompt(processor, MESSAGES)
    labels = {name: _labels(processor, QWEN3.encode(processor, text, v.frames, v.timing))
              for name, v in (("clean", clean), ("shuffled", shuffled), ("dropped", dropped))}
    assert labels["shuffled"] == labels["clean"] == labels["dropped"]
    values = [float(t) for t in labels["clean"]]
    assert values == sorted(values) and len(set(values)) == len(values)


def test_vllm_request_carries_what_vllm_requires_and_matches_the_hf_tokens(processor):
    from transformers.video_utils import VideoMetadata

    from rova.inference.vllm_requests import vllm_request

    path = shared_data_or_skip("videos", "video_r1_example.mp4")
    clip = read_clip(path, SAMPLING)
    encoded = QWEN3.encode(processor, render_prompt(processor, MESSAGES), clip.frames, clip.timing)
    request = vllm_request(encoded)
    assert request["prompt"].count(QWEN3.tokens.video_pad) == 1  # one placeholder: the engine expands it
    (frames, metadata), = request["multi_modal_data"]["video"]
    assert frames is clip.frames
    assert metadata == {"total_num_frames": clip.total_frames, "fps": pytest.approx(clip.source_fps),
                        "frames_indices": clip.indices.tolist()}
    assert request["mm_processor_kwargs"]["do_sample_frames"] is False
    replayed = processor(text=[request["prompt"]], videos=[frames], video_metadata=[VideoMetadata(**metadata)],
                         return_tensors="pt", **request["mm_processor_kwargs"])
    assert replayed["input_ids"][0].tolist() == encoded.input_ids
    assert torch.equal(replayed["video_grid_thw"], encoded.visual["video_grid_thw"])


# ---------------------------------------------------------------------------------- every stage on Qwen3-VL
SMALL = ("model=tiny_qwen3_vl", "logger=none", "data.demo_num_clips=8")


def _metrics(run_dir) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("stage", [
    ("stage=grpo", "stage.per_device_train_batch_size=4", "stage.num_generations=2"),
    ("stage=tgrpo", "corruption=weather", "reward.w_kl=1.0", "stage.num_generations=4",
     "stage.per_device_train_batch_size=4"),
    ("stage=memory", "stage.num_generations=2", "stage.per_device_train_batch_size=4", "memory.recheck_interval=1"),
], ids=["grpo", "tgrpo", "memory"])
def test_rl_stages_train_the_tiny_qwen3_vl(tmp_path, cache_dir, stage):
    proc = launch(tmp_path, cache_dir, *SMALL, *stage, "stage.max_steps=2")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    run_dir = only_run_dir(tmp_path / "outputs")
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["global_step"] == 2
    assert json.loads((run_dir / "model" / "config.json").read_text())["model_type"] == "qwen3_vl"
    rollouts = [m for m in _metrics(run_dir) if "branch/clean_completions" in m]
    assert len(rollouts) == 2 and all(m["branch/clean_completions"] > 0 for m in rollouts)


def test_sft_then_eval_on_the_tiny_qwen3_vl(tmp_path, cache_dir):
    (tmp_path / "sft").mkdir()
    (tmp_path / "eval").mkdir()
    sft = launch(tmp_path / "sft", cache_dir, *SMALL, "stage=sft", "stage.max_steps=2")
    assert sft.returncode == 0, sft.stdout[-3000:] + sft.stderr[-3000:]
    model_dir = only_run_dir(tmp_path / "sft" / "outputs") / "model"
    ev = launch(tmp_path / "eval", cache_dir, "model=tiny_qwen3_vl", "logger=none", "stage=eval",
                f"model.path={model_dir}", "model.build_tiny=false", "benchmark.demo_num_clips=4",
                "eval.max_new_tokens=16", "eval.corruptions=[fog]", "eval.severities=[5]")
    assert ev.returncode == 0, ev.stdout[-3000:] + ev.stderr[-3000:]
    results = json.loads((only_run_dir(tmp_path / "eval" / "outputs") / "results.json").read_text())
    assert results["clean"]["n"] == 4 and "fog" in results["grid"]


def test_cot_on_the_tiny_qwen3_vl(tmp_path, cache_dir):
    proc = launch(tmp_path, cache_dir, *SMALL, "stage=cot", "data.demo_num_clips=4", "cot.num_samples=2",
                  "cot.max_new_tokens=16", "cot.min_score=0.0")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads((only_run_dir(tmp_path / "outputs") / "cot_report.json").read_text())
    assert report["records"] == 4, report
