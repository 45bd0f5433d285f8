"""vLLM requests and sampling parameters for video prompts, shared by the training rollout (rollout=vllm) and the
vLLM generator of stage=eval / stage=cot.

Each request carries the SAME pre-sampled frames, the same video metadata (fps, frame indices, total frames: vLLM
0.31 requires it) and the same processor settings as the HF path gave its processor (the family adapter chose them
when it encoded the prompt), so vLLM expands the video placeholder to exactly as many tokens as the HF passes see.
Vision placeholders are banned by a token whitelist.
"""

from __future__ import annotations

from rova.models.families import EncodedPrompt


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
