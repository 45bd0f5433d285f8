"""rollout=vllm: colocated vLLM generation for video prompts.

TRL 1.16's colocated vLLM path sends only images. Here each request carries the SAME pre-sampled frames,
the same sampling fps (video metadata) and the same processor settings as the HF path, so vLLM expands
`<|video_pad|>` to exactly as many tokens as the training forward passes see. Engine creation, weight
sync after each optimizer step and sleep mode come from TRL's `VLLMGeneration` (use_vllm, colocate).
"""

from __future__ import annotations

from rova.training.visual_inputs import VIDEO_PROCESSOR_KWARGS, EncodedPrompt, video_metadata


def vllm_request(prompt: EncodedPrompt) -> dict:
    """One vLLM prompt dict: chat-templated text (one placeholder per clip) + the clip + processor kwargs."""
    request: dict = {"prompt": prompt.text}
    if prompt.frames is None:
        return request
    if prompt.is_image:
        request["multi_modal_data"] = {"image": prompt.frames[0]}
        request["mm_processor_kwargs"] = {"do_resize": False}
        return request
    metadata = video_metadata(prompt.frames.shape[0], prompt.sample_fps)
    request["multi_modal_data"] = {"video": [(prompt.frames, metadata)]}
    request["mm_processor_kwargs"] = dict(VIDEO_PROCESSOR_KWARGS)
    return request


def sampling_params(trainer, greedy: bool):
    from vllm import SamplingParams

    args = trainer.args
    kwargs = {
        "n": 1,
        "max_tokens": args.max_completion_length,
        "temperature": 0.0 if greedy else args.temperature,
        "top_p": 1.0 if greedy else args.top_p,
        "stop_token_ids": list(trainer.eos_token_ids),
        # vLLM must not emit vision placeholders either (see VideoGRPOTrainer.__init__).
        "logit_bias": {int(t): -100.0 for t in trainer.generation_config.suppress_tokens or []},
    }
    return SamplingParams(**kwargs)


def generate_with_vllm(trainer, prompts: list[EncodedPrompt], greedy: bool = False) -> list[list[int]]:
    generation = trainer.vllm_generation
    step = trainer.state.global_step
    if step != trainer._last_loaded_step:
        generation.sync_weights()
        trainer._last_loaded_step = step
    if not prompts:
        return []
    llm = generation.llm
    if generation.enable_sleep_mode:
        llm.wake_up(tags=["kv_cache"])
    try:
        outputs = llm.generate([vllm_request(p) for p in prompts], sampling_params=sampling_params(trainer, greedy),
                               use_tqdm=False)
    finally:
        if generation.enable_sleep_mode:
            llm.sleep(level=2)
            generation._llm_weights_sleeping = True
    return [list(out.outputs[0].token_ids) for out in outputs]
