"""Model loading: real Qwen2.5-VL checkpoints and the offline tiny model share one from_pretrained path."""
