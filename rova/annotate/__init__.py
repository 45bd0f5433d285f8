"""CoT annotation (stage=cot): a teacher writes <think> rationales, kept when its answer scores."""
