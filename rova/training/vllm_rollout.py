"""rollout=vllm: colocated vLLM generation for video prompts.

TRL 1.16's colocated vLLM path sends only images. Here each request carries the clip itself, as the HF path
encoded it (rova.inference.vllm_requests). Engine creation, weight sync and sleep mode come from TRL's
`VLLMGeneration` (use_vllm, colocate). Vision placeholders are banned (a token whitelist), and each sampled
token's log-prob comes back for TRL's importance-sampling correction.
"""

from __future__ import annotations

from rova.inference.vllm_requests import vllm_request, vllm_sampling_params
from rova.models.families import EncodedPrompt


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
