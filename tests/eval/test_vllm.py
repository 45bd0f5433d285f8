"""stage=eval with rollout=vllm: VLLMGenerator against a recording fake `vllm` module (vLLM cannot run on CPU).

Checked: the engine's constructor arguments (built lazily, once), one request per prompt carrying the very frames
and fps the HF encode used, sampling from the decoding preset with vision placeholders banned by whitelist,
completions decoded in prompt order, make_generator's choice, and a clear error without the vllm extra.
"""

from __future__ import annotations

import sys
import types
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from rova.config.eval import EvalConfig
from rova.config.model import ModelConfig
from rova.config.rollout import RolloutConfig
from rova.errors import RovaError
from rova.eval.generation import make_generator
from rova.inference.hf_generation import HFGenerator as Generator
from tests.support.families import VISION_TOKENS
from rova.inference.prompts import render_prompt
from rova.inference.vllm_generation import VLLMGenerator
from tests.support.families import encode_prompt


class FakeLLM:
    instances: list["FakeLLM"] = []
    reply = None  # request index, request -> completion token ids

    def __init__(self, **kwargs):
        self.kwargs = kwargs
        self.calls: list[tuple[list[dict], object]] = []
        FakeLLM.instances.append(self)

    def generate(self, requests, sampling_params, use_tqdm=True):
        self.calls.append((list(requests), sampling_params))
        return [SimpleNamespace(outputs=[SimpleNamespace(token_ids=FakeLLM.reply(i, r))]) for i, r in enumerate(requests)]


@pytest.fixture
def fake_vllm(monkeypatch):
    module = types.ModuleType("vllm")
    module.LLM = FakeLLM
    module.SamplingParams = lambda **kwargs: SimpleNamespace(**kwargs)
    monkeypatch.setitem(sys.modules, "vllm", module)
    monkeypatch.setattr(FakeLLM, "instances", [])
    monkeypatch.setattr(FakeLLM, "reply", staticmethod(lambda i, r: [0]))
    return module


@pytest.fixture(scope="module")
def processor(tiny_model_dir):
    from transformers import AutoProcessor

    return AutoProcessor.from_pretrained(tiny_model_dir)


def _cfg(tiny_model_dir, rollout="vllm", **eval_kwargs):
    return SimpleNamespace(
        model=ModelConfig(family="qwen2_5_vl", path=str(tiny_model_dir), dtype="bfloat16"),
        rollout=RolloutConfig(name=rollout, vllm_gpu_memory_utilization=0.45, vllm_max_model_length=4096),
        eval=EvalConfig(seed=7, max_new_tokens=64, **eval_kwargs),
    )


@pytest.fixture(scope="module")
def clip(demo_file, processor):
    from rova.data.prompts import build_messages
    from rova.data.records import load_records
    from rova.config.data import FrameSamplingConfig
    from rova.data.video import read_clip

    records = load_records(demo_file)[:2]
    clips = [read_clip(r.media_path, FrameSamplingConfig(2.0, 4, 8, 3136, 6272, 50176)) for r in records]
    return [(render_prompt(processor, build_messages(r)), c) for r, c in zip(records, clips)]


def test_engine_built_lazily_once_with_config_values(fake_vllm, tiny_model_dir, processor):
    gen = make_generator(_cfg(tiny_model_dir), None, processor)
    assert isinstance(gen, VLLMGenerator) and FakeLLM.instances == []  # nothing built until the first prompts
    assert gen.generate([]) == [] and FakeLLM.instances == []
    prompts = [gen.encode("hello", None, None, False)]
    gen.generate(prompts)
    gen.generate(prompts)
    (llm,) = FakeLLM.instances
    assert llm.kwargs == {
        "model": str(tiny_model_dir), "dtype": "bfloat16", "limit_mm_per_prompt": {"video": 1, "image": 1},
        "gpu_memory_utilization": 0.45, "max_model_len": 4096, "seed": 7, "enforce_eager": False,
    }
    assert len(llm.calls) == 2
    assert make_generator(_cfg(tiny_model_dir), None, processor, enforce_eager=True).engine_kwargs()["enforce_eager"]


def test_requests_carry_the_hf_encode_frames(fake_vllm, tiny_model_dir, processor, clip):
    gen = make_generator(_cfg(tiny_model_dir), None, processor)
    image = np.full((1, 56, 56, 3), 128, np.uint8)
    prompts = [gen.encode(text, c.frames, c.sample_fps, False) for text, c in clip]
    prompts.append(gen.encode("<|vision_start|><|image_pad|><|vision_end|>what?", image, None, True))
    prompts.append(gen.encode("text only", None, None, False))
    for (text, c), p in zip(clip, prompts):  # encode is the HF path's, unchanged
        ref = encode_prompt(processor, text, c.frames, c.sample_fps)
        assert p.input_ids == ref.input_ids and torch.equal(p.visual["pixel_values_videos"], ref.visual["pixel_values_videos"])
    gen.generate(prompts)

    (llm,) = FakeLLM.instances
    ((requests, _),) = llm.calls  # every prompt in ONE generate call
    assert len(requests) == len(prompts)
    for (text, c), request in zip(clip, requests):
        assert request["prompt"] == text and request["prompt"].count("<|video_pad|>") == 1
        ((frames, metadata),) = request["multi_modal_data"]["video"]
        assert frames is c.frames  # the very pre-sampled frames, not re-read or re-sampled
        assert metadata["fps"] == pytest.approx(c.sample_fps) and metadata["total_num_frames"] == c.frames.shape[0]
        assert request["mm_processor_kwargs"] == {"do_sample_frames": False, "do_resize": False,
                                                  "cap_pixels_per_frame": False}
    assert np.array_equal(requests[2]["multi_modal_data"]["image"], image[0])
    assert requests[3] == {"prompt": "text only"}


@pytest.mark.parametrize("decoding, temperature, top_p", [("greedy", 0.0, 1.0), ("video_r1", 0.1, 0.001)])
def test_sampling_follows_the_preset_and_bans_vision_tokens(fake_vllm, tiny_model_dir, processor, decoding,
                                                            temperature, top_p):
    gen = make_generator(_cfg(tiny_model_dir, decoding=decoding), None, processor)
    gen.generate([gen.encode("hi", None, None, False)])
    ((_, params),) = FakeLLM.instances[0].calls
    tok = processor.tokenizer
    assert (params.temperature, params.top_p, params.n, params.max_tokens) == (temperature, top_p, 1, 64)
    im_end = tok.convert_tokens_to_ids("<|im_end|>")
    assert set(params.stop_token_ids) == {im_end, tok.eos_token_id}
    vision = {tok.convert_tokens_to_ids(t) for t in VISION_TOKENS}
    allowed = set(params.allowed_token_ids)
    assert allowed.isdisjoint(vision) and allowed | vision == set(range(len(tok)))
    assert im_end in allowed  # the completion can still end
    assert not getattr(params, "logit_bias", None) and not hasattr(params, "logprobs")


def test_outputs_decoded_in_prompt_order(fake_vllm, tiny_model_dir, processor):
    tok = processor.tokenizer
    im_end = tok.convert_tokens_to_ids("<|im_end|>")
    answers = [f"<answer>{letter}</answer>" for letter in "CAB"]
    # Each completion depends on its own request; text after <|im_end|> (a stop token) is not part of it.
    FakeLLM.reply = staticmethod(lambda i, r: tok.encode(answers[int(r["prompt"][-1])]) + [im_end] + tok.encode(" junk"))
    gen = make_generator(_cfg(tiny_model_dir), None, processor)
    assert gen.generate([gen.encode(f"question {k}", None, None, False) for k in range(3)]) == answers


def test_make_generator_hf(tiny_model_dir, processor):
    gen = make_generator(_cfg(tiny_model_dir, rollout="hf", decoding="video_r1"), object(), processor)
    assert type(gen) is Generator and gen.decoding == "video_r1" and gen.max_new_tokens == 64


def test_missing_vllm_is_a_clear_error(monkeypatch, tiny_model_dir, processor):
    monkeypatch.setitem(sys.modules, "vllm", None)  # `import vllm` raises ImportError
    with pytest.raises(RovaError, match=r"rollout=vllm needs the vllm extra on a GPU machine: `uv sync --extra vllm`"):
        make_generator(_cfg(tiny_model_dir), None, processor)
