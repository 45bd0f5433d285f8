"""Typed config: Hydra composes YAML, these dataclasses check types, ranges and cross-field rules."""
