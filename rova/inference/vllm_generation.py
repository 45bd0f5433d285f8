"""VLLMGenerator: HFGenerator's interface (encode, generate) on a vLLM engine, for stage=eval and stage=cot.

Prompts are encoded by the HF processor exactly as `HFGenerator.encode` does (inherited), and each is sent to
vLLM with its own pre-sampled frames, video metadata and processor settings (`vllm_request`, shared with the
training rollout), so the engine expands the video placeholder to the tokens the HF path sees. Vision placeholders
are banned by the training rollout's whitelist; decoding follows the generator's preset (DECODING_PRESETS).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from rova.config.eval import DECODING_PRESETS
from rova.errors import RovaError
from rova.inference.eos import cut_at_eos
from rova.inference.hf_generation import HFGenerator
from rova.inference.vllm_requests import vllm_request, vllm_sampling_params
from rova.models.families import EncodedPrompt

MISSING_VLLM = "rollout=vllm needs the vllm extra on a GPU machine: `uv sync --extra vllm`"


def import_vllm():
    try:
        import vllm
    except ImportError as exc:
        raise RovaError(MISSING_VLLM) from exc
    return vllm


def preset_sampling(decoding: str) -> tuple[float, float]:
    """(temperature, top_p) of a decoding preset: greedy -> (0, 1); otherwise the preset's values."""
    preset = DECODING_PRESETS[decoding]
    if not preset.get("do_sample", False):
        return 0.0, 1.0
    return float(preset.get("temperature", 1.0)), float(preset.get("top_p", 1.0))


@dataclass
class VLLMGenerator(HFGenerator):
    """HFGenerator's interface (encode, generate) on a vLLM engine built on first use; `model` is unused (None)."""

    model_dir: str = ""
    dtype: str = "auto"
    gpu_memory_utilization: float = 0.3
    max_model_len: Optional[int] = None
    seed: int = 0
    enforce_eager: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()  # eos ids and banned vision tokens, exactly as the HF path
        if not self.model_dir:
            raise RovaError("VLLMGenerator needs model_dir (the checkpoint directory vLLM loads)")
        import_vllm()  # fail before any benchmark work, not at the first batch
        self._llm = None
        temperature, top_p = preset_sampling(self.decoding)
        self.sampling_params = self.make_sampling_params(temperature, top_p)

    def make_sampling_params(self, temperature: float, top_p: float):
        return vllm_sampling_params(
            max_tokens=self.max_new_tokens, temperature=temperature, top_p=top_p, stop_token_ids=self.eos_ids,
            tokenizer=self.processor.tokenizer, banned=list(self.generation_config.suppress_tokens or []),
        )

    def engine_kwargs(self) -> dict:
        return {
            "model": str(self.model_dir),
            "dtype": self.dtype,
            "limit_mm_per_prompt": {"video": 1, "image": 1},
            "gpu_memory_utilization": self.gpu_memory_utilization,
            "max_model_len": self.max_model_len,
            "seed": self.seed,
            "enforce_eager": self.enforce_eager,
        }

    @property
    def llm(self):
        if self._llm is None:
            self._llm = import_vllm().LLM(**self.engine_kwargs())
        return self._llm

    def generate(self, prompts: list[EncodedPrompt]) -> list[str]:
        if not prompts:
            return []
        outputs = self.llm.generate([vllm_request(p) for p in prompts], sampling_params=self.sampling_params,
                                    use_tqdm=False)
        if len(outputs) != len(prompts):
            raise RuntimeError(f"vLLM returned {len(outputs)} outputs for {len(prompts)} prompts")
        eos = set(self.eos_ids)
        # LLM.generate returns outputs in prompt order
        return self.decode([cut_at_eos(list(out.outputs[0].token_ids), eos) for out in outputs])
