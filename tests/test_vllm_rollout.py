"""rollout=vllm: the requests sent to vLLM carry the same frames, fps and processor settings as the HF path.

CPU check: every request, run through the same HF processor with its own kwargs, yields exactly the token
ids the HF path trains on (so vLLM, which uses that processor, expands <|video_pad|> identically).
GPU tier: a real colocated vLLM rollout on the tiny model (skipped without CUDA and vllm).
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from rova.training.visual_inputs import encode_prompt, render_prompt
from rova.training.vllm_rollout import vllm_request


def test_video_request_matches_the_hf_path(tiny_model_dir, demo_file):
    from transformers import AutoProcessor
    from transformers.video_utils import VideoMetadata

    from rova.data.records import load_records
    from rova.data.prompts import build_messages
    from rova.data.sampling import FrameSamplingConfig
    from rova.data.video import read_clip

    processor = AutoProcessor.from_pretrained(tiny_model_dir)
    record = load_records(demo_file)[0]
    clip = read_clip(record.media_path, FrameSamplingConfig(2.0, 4, 8, 3136, 6272, 50176))
    text = render_prompt(processor, build_messages(record))
    encoded = encode_prompt(processor, text, clip.frames, clip.sample_fps)

    request = vllm_request(encoded)
    assert request["prompt"].count("<|video_pad|>") == 1  # one placeholder: the engine expands it
    (frames, metadata), = request["multi_modal_data"]["video"]
    assert frames is clip.frames and frames.dtype == np.uint8
    assert metadata["fps"] == pytest.approx(clip.sample_fps)
    assert request["mm_processor_kwargs"] == {"do_sample_frames": False, "do_resize": False, "cap_pixels_per_frame": False}

    replayed = processor(text=[request["prompt"]], videos=[frames], video_metadata=[VideoMetadata(**metadata)],
                         return_tensors="pt", **request["mm_processor_kwargs"])
    assert replayed["input_ids"][0].tolist() == encoded.input_ids
    assert torch.equal(replayed["video_grid_thw"], encoded.visual["video_grid_thw"])
    assert float(replayed["second_per_grid_ts"][0]) == pytest.approx(2 / clip.sample_fps)


def test_image_and_text_requests():
    from rova.training.visual_inputs import EncodedPrompt

    image = np.zeros((1, 56, 56, 3), np.uint8)
    request = vllm_request(EncodedPrompt([1, 2], {}, "<|image_pad|>hi", image, None, True))
    assert request["multi_modal_data"]["image"].shape == (56, 56, 3)
    assert vllm_request(EncodedPrompt([1], {}, "plain")) == {"prompt": "plain"}


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available() or importlib.util.find_spec("vllm") is None,
                    reason="needs CUDA and the vllm extra")
def test_vllm_video_rollout_on_gpu(tmp_path, cache_dir):
    from tests.test_video_trainer import make_trainer

    trainer, _, run_dir = make_trainer(cache_dir, tmp_path, "rollout=vllm", "model.dtype=bfloat16", "stage.max_steps=1",
                                       "rollout.vllm_gpu_memory_utilization=0.2")
    trainer.train()
    assert (run_dir / "rollouts.jsonl").exists()
