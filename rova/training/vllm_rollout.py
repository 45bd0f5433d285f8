"""rollout=vllm: colocated vLLM generation for video prompts.

TRL 1.16's colocated vLLM path sends only images. Here each request carries the SAME pre-sampled frames,
the same video metadata (fps, frame indices, total frames: vLLM 0.31 requires it) and the same processor
settings as the HF path gave its processor (the family adapter chose them when it encoded the prompt), so
vLLM expands the video placeholder to exactly as many tokens as the training forward passes see. Engine creation, weight
sync and sleep mode come from TRL's `VLLMGeneration` (use_vllm, colocate). Vision placeholders are banned
(a token whitelist), and each sampled token's log-prob comes back for TRL's importance-sampling correction.
"""

from __future__ import annotations

from rova.training.visual_inputs import EncodedPrompt


def vllm_request(prompt: EncodedPrompt) -> dict:
    """One vLLM prompt dict: chat-templated text (one placeholder per clip), the clip with the metadata the HF
    processor was given, and the same processor kwargs."""
    request: dict = {"prompt": prompt.text}
    if prompt.frames is None:
        return request
    kwargs = dict(prompt.processor_kwargs or {})
    if prompt.is_image:
        request["multi_modal_data"] = {"image": prompt.frames[0]}
        request["mm_processor_kwargs"] = kwargs
        return request
    if prompt.video_metadata is None:
        raise ValueError("a video prompt for vLLM needs the video metadata it was encoded with (family.encode)")
    request["multi_modal_data"] = {"video": [(prompt.frames, dict(prompt.video_metadata))]}
    request["mm_processor_kwargs"] = kwargs
    return request


def allowed_token_ids(vocab_size: int, banned: list[int]) -> list[int]:
    """Every token id the tokenizer knows except `banned` (vLLM v1 masks the rest to -inf before sampling)."""
    banned_set = {int(t) for t in banned}
    return [t for t in range(vocab_size) if t not in banned_set]


def vllm_sampling_params(*, max_tokens: int, temperature: float, top_p: float, stop_token_ids: list[int],
                         tokenizer, banned: list[int], logprobs: int | None = None):
    """vLLM SamplingParams shared by the training rollout and stage=eval: one completion per prompt, stopping at
    `stop_token_ids`, with the `banned` (vision placeholder) ids made impossible to sample."""
    from vllm import SamplingParams

    kwargs = {
        "n": 1,
        "max_tokens": max_tokens,
        "temperature": temperature,
        "top_p": top_p,
        "stop_token_ids": list(stop_token_ids),
        # Vision placeholders must never be sampled (see VideoGRPOTrainer.__init__): a logit bias only makes them
        # unlikely, a whitelist makes them impossible. vLLM checks the whitelist against len(tokenizer).
        "allowed_token_ids": allowed_token_ids(len(tokenizer), banned),
    }
    if logprobs is not None:
        kwargs["logprobs"] = logprobs
    return SamplingParams(**kwargs)


def sampling_params(trainer, greedy: bool):
    args = trainer.args
    return vllm_sampling_params(
        max_tokens=args.max_completion_length,
        temperature=0.0 if greedy else args.temperature,
        top_p=1.0 if greedy else args.top_p,
        stop_token_ids=trainer.eos_token_ids,
        tokenizer=trainer.processing_class.tokenizer,
        banned=trainer.generation_config.suppress_tokens or [],
        # The sampled token's log-prob (processed: after temperature / top_p, as TRL's engine is configured), for
        # TRL's importance-sampling correction.
        logprobs=0,
    )


def sampled_logprobs(completion) -> list[float]:
    """Log-prob of each sampled token of one vLLM CompletionOutput (requested with logprobs=0)."""
    if completion.logprobs is None or len(completion.logprobs) != len(completion.token_ids):
        raise RuntimeError("vLLM returned no per-token log-probs for a completion although logprobs=0 was requested")
    return [float(position[token].logprob) for token, position in zip(completion.token_ids, completion.logprobs)]


def generate_with_vllm(trainer, prompts: list[EncodedPrompt], greedy: bool = False
                       ) -> tuple[list[list[int]], list[list[float]]]:
    """One completion per prompt: (token ids, vLLM's log-prob of each sampled token)."""
    generation = trainer.vllm_generation
    step = trainer.state.global_step
    # Sleep level 2 discards the weights, so they are re-pushed whenever they were released, not only once per
    # optimizer step (several generations per step, memory re-checks, eval), as TRL's VLLMGeneration.generate does.
    released = generation.enable_sleep_mode and getattr(generation, "_llm_weights_sleeping", False)
    if step != trainer._last_loaded_step or released:
        generation.sync_weights()
        trainer._last_loaded_step = step
    llm = generation.llm
    if generation.enable_sleep_mode:
        llm.wake_up(tags=["kv_cache"])
    try:
        # A rank with no prompts still wakes and sleeps: every rank keeps the same weights state, so every rank
        # takes the same re-sync decision next time (sync_weights gathers ZeRO-3 parameters collectively).
        outputs = llm.generate([vllm_request(p) for p in prompts], sampling_params=sampling_params(trainer, greedy),
                               use_tqdm=False) if prompts else []
    finally:
        if generation.enable_sleep_mode:
            llm.sleep(level=2)
            generation._llm_weights_sleeping = True
    completions = [out.outputs[0] for out in outputs]
    return [list(c.token_ids) for c in completions], [sampled_logprobs(c) for c in completions]
