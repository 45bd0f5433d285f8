"""Training glue: video encoding for the processor, the video GRPO trainer, reward assembly, tracking."""
