"""Typed config: Hydra composes YAML, these dataclasses check types, ranges and cross-field rules.

One module per conf group or top-level section (`rova/config/<group>.py`), `RootConfig` and the cross-field rules
in schema.py. The bottom layer above rova.errors / rova.utils: nothing here imports a feature package (the stage
registry, read lazily for stage names and kinds, is the one exception).
"""
