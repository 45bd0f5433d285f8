"""Generation shared by the trainer's rollouts, stage=eval and stage=cot: prompts, padding, visual batches, the HF and
vLLM generators, the resumable, sharded prediction files, and the load-time check of records (record_checks). Imports only lower layers (rova.tools.layers)."""
