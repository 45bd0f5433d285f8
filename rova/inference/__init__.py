"""Generation shared by the trainer's rollouts, stage=eval and stage=cot: prompts, padding, visual batches, the HF and
vLLM generators, and the resumable, sharded prediction files. Imports only lower layers (rova.tools.layers)."""
