"""Decoding presets: the generation settings each `eval.decoding` name stands for (HF generate kwargs; the vLLM
generator reads temperature and top_p from the same entry)."""

from __future__ import annotations

DECODING_PRESETS = {
    # Greedy: what lmms-eval / VLMEvalKit use, and deterministic across runs and shards.
    "greedy": {"do_sample": False},
    # Video-R1's eval_bench.py settings (vLLM): temperature 0.1, top_p 0.001.
    "video_r1": {"do_sample": True, "temperature": 0.1, "top_p": 0.001},
}
