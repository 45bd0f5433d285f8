"""rollout=vllm: the requests sent to vLLM carry the same frames, fps and processor settings as the HF path.

CPU check: every request, run through the same HF processor with its own kwargs, yields exactly the token
ids the HF path trains on (so vLLM, which uses that processor, expands <|video_pad|> identically).
CPU check with a recording fake engine: weights re-synced after sleep mode released them, vision
placeholders banned by a whitelist, per-token sampling log-probs returned.
GPU tier: a real colocated vLLM rollout on the tiny model (skipped without CUDA and vllm).
"""

from __future__ import annotations

import importlib.util
import sys
import types
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from rova.inference.prompts import render_prompt
from tests.support.families import encode_prompt
from rova.inference.vllm_requests import vllm_request
from rova.models.families import EncodedPrompt
from rova.training.vllm_rollout import generate_with_vllm, sampled_logprobs, sampling_params


def test_video_request_matches_the_hf_path(tiny_model_dir, demo_file):
    from transformers import AutoProcessor
    from transformers.video_utils import VideoMetadata

    from rova.data.records import load_records
    from rova.data.prompts import build_messages
    from rova.config.data import FrameSamplingConfig
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
    from rova.models.families import EncodedPrompt

    image = np.zeros((1, 56, 56, 3), np.uint8)
    request = vllm_request(EncodedPrompt([1, 2], {}, "<|image_pad|>hi", image, None, True))
    assert request["multi_modal_data"]["image"].shape == (56, 56, 3)
    assert vllm_request(EncodedPrompt([1], {}, "plain")) == {"prompt": "plain"}


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available() or importlib.util.find_spec("vllm") is None,
                    reason="needs CUDA and the vllm extra")
@pytest.mark.parametrize("model", ["tiny", "tiny_qwen3_vl"])
def test_vllm_video_rollout_on_gpu(tmp_path, cache_dir, model):
    from tests.support.trainers import make_trainer

    trainer, _, run_dir = make_trainer(cache_dir, tmp_path, "rollout=vllm", "model.dtype=bfloat16", "stage.max_steps=1",
                                       "rollout.vllm_gpu_memory_utilization=0.2", f"model={model}")
    trainer.train()
    assert (run_dir / "rollouts.jsonl").exists()


# ---------------------------------------------------------------- generate_with_vllm against a recording fake engine
# vLLM cannot run on a CPU machine; these fakes record what generate_with_vllm asks of the engine and model
# vLLM's observable contract: sleep(level=2) releases the weights, sync_weights (TRL) wakes and re-pushes them.


class FakeLLM:
    def __init__(self):
        self.calls: list[tuple] = []
        self.weights: int | None = None  # version of the pushed training weights; None = released
        self.generated_with: list[int | None] = []

    def wake_up(self, tags):
        self.calls.append(("wake_up", tuple(tags)))

    def sleep(self, level):
        self.calls.append(("sleep", level))
        if level == 2:
            self.weights = None

    def generate(self, requests, sampling_params, use_tqdm):
        self.calls.append(("generate", len(requests)))
        self.generated_with.append(self.weights)
        self.sampling_params = sampling_params
        outputs = []
        for i, _ in enumerate(requests):
            tokens = [10 + i, 11, 2]
            # logprobs=0: one entry per position holding the sampled token (vLLM may add a top-1 entry; ignore it).
            logprobs = [{t: SimpleNamespace(logprob=-0.5 * (k + 1) - i, rank=1), 99: SimpleNamespace(logprob=-9.0, rank=2)}
                        for k, t in enumerate(tokens)]
            outputs.append(SimpleNamespace(outputs=[SimpleNamespace(token_ids=tokens, logprobs=logprobs)]))
        return outputs


class FakeGeneration:
    """TRL 1.16 VLLMGeneration, colocate mode: what generate_with_vllm touches."""

    def __init__(self, trainer_state, enable_sleep_mode: bool):
        self.llm = FakeLLM()
        self.enable_sleep_mode = enable_sleep_mode
        self._state = trainer_state
        self.syncs: list[int] = []
        if enable_sleep_mode:  # TRL puts the fresh engine to sleep right after creating it
            self.llm.sleep(level=2)
        self._llm_weights_sleeping = enable_sleep_mode

    def sync_weights(self):
        if self.enable_sleep_mode:  # as TRL: wake the weights before loading into them
            self.llm.wake_up(tags=["weights"])
            self._llm_weights_sleeping = False
        self.llm.weights = self._state.global_step
        self.syncs.append(self._state.global_step)


class FakeTokenizer:
    def __len__(self):
        return 16


def fake_trainer(enable_sleep_mode: bool, suppress=(5, 6)):
    state = SimpleNamespace(global_step=0)
    return SimpleNamespace(
        state=state, _last_loaded_step=-1, vllm_generation=FakeGeneration(state, enable_sleep_mode),
        args=SimpleNamespace(max_completion_length=8, temperature=0.9, top_p=0.95), eos_token_ids=[2],
        generation_config=SimpleNamespace(suppress_tokens=list(suppress)),
        processing_class=SimpleNamespace(tokenizer=FakeTokenizer()),
    )


@pytest.fixture
def fake_vllm(monkeypatch):
    """A stand-in `vllm` module whose SamplingParams keeps its keyword arguments."""
    module = types.ModuleType("vllm")
    module.SamplingParams = lambda **kwargs: SimpleNamespace(**kwargs)
    monkeypatch.setitem(sys.modules, "vllm", module)
    return module


def _prompts(n):
    return [EncodedPrompt([1], {}, f"p{i}") for i in range(n)]


def test_sleep_mode_resyncs_weights_released_within_a_step(fake_vllm):
    """Several generations in one optimizer step (and eval) each run on the current weights, never released ones."""
    trainer = fake_trainer(enable_sleep_mode=True)
    generation, llm = trainer.vllm_generation, trainer.vllm_generation.llm
    generate_with_vllm(trainer, _prompts(2))
    generate_with_vllm(trainer, _prompts(2))  # same step, after sleep(level=2)
    generate_with_vllm(trainer, _prompts(1), greedy=True)  # e.g. eval in the same step
    trainer.state.global_step = 1
    generate_with_vllm(trainer, _prompts(2))
    assert llm.generated_with == [0, 0, 0, 1]  # None would mean: sampled from released weights
    assert generation.syncs == [0, 0, 0, 1]
    assert generation._llm_weights_sleeping is True  # asleep again between generations
    assert llm.calls[-4:] == [("wake_up", ("weights",)), ("wake_up", ("kv_cache",)), ("generate", 2), ("sleep", 2)]


def test_without_sleep_mode_weights_sync_once_per_step(fake_vllm):
    trainer = fake_trainer(enable_sleep_mode=False)
    for step in (0, 0, 0, 1, 1):
        trainer.state.global_step = step
        generate_with_vllm(trainer, _prompts(1))
    assert trainer.vllm_generation.syncs == [0, 1]
    assert trainer.vllm_generation.llm.generated_with == [0, 0, 0, 1, 1]
    assert not any(name in ("wake_up", "sleep") for name, _ in trainer.vllm_generation.llm.calls)


def test_rank_without_prompts_keeps_the_same_weights_state(fake_vllm):
    """An empty rank syncs and sleeps like the others, so the next re-sync (a ZeRO-3 collective) happens on all."""
    busy, idle = fake_trainer(enable_sleep_mode=True), fake_trainer(enable_sleep_mode=True)
    for _ in range(2):
        assert generate_with_vllm(idle, []) == ([], [])
        generate_with_vllm(busy, _prompts(1))
    assert idle.vllm_generation.syncs == busy.vllm_generation.syncs == [0, 0]
    assert idle.vllm_generation._llm_weights_sleeping is busy.vllm_generation._llm_weights_sleeping is True
    assert not any(name == "generate" for name, _ in idle.vllm_generation.llm.calls)


def test_vision_placeholders_are_banned_not_biased(fake_vllm):
    trainer = fake_trainer(enable_sleep_mode=False, suppress=(5, 6))
    for greedy in (False, True):
        generate_with_vllm(trainer, _prompts(1), greedy=greedy)
        params = trainer.vllm_generation.llm.sampling_params
        assert params.allowed_token_ids == [t for t in range(16) if t not in (5, 6)]
        assert 2 in params.allowed_token_ids and params.stop_token_ids == [2]  # EOS stays possible
        assert not getattr(params, "logit_bias", None)
    assert params.temperature == 0.0


def test_tiny_tokenizer_whitelist_excludes_every_vision_token(tiny_model_dir, fake_vllm):
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(tiny_model_dir)
    tok = processor.tokenizer
    vision = [tok.convert_tokens_to_ids(t) for t in ("<|image_pad|>", "<|video_pad|>", "<|vision_start|>", "<|vision_end|>")]
    trainer = fake_trainer(enable_sleep_mode=False, suppress=vision)
    trainer.processing_class = processor
    allowed = set(sampling_params(trainer, greedy=False).allowed_token_ids)
    assert allowed.isdisjoint(vision)
    assert allowed | set(vision) == set(range(len(tok)))


def test_returns_sampled_token_logprobs(fake_vllm):
    trainer = fake_trainer(enable_sleep_mode=True)
    ids, logprobs = generate_with_vllm(trainer, _prompts(2))
    assert trainer.vllm_generation.llm.sampling_params.logprobs == 0  # sampled token only
    assert ids == [[10, 11, 2], [11, 11, 2]]
    assert logprobs == [[-0.5, -1.0, -1.5], [-1.5, -2.0, -2.5]]
    assert [len(x) for x in logprobs] == [len(x) for x in ids]


def test_missing_logprobs_fail_loudly():
    completion = SimpleNamespace(token_ids=[1, 2], logprobs=None)
    with pytest.raises(RuntimeError, match="log-probs"):
        sampled_logprobs(completion)
