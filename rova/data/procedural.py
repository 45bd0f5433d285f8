"""The procedural datasets `data.build_demo` / `benchmark.build_demo` render on first use, by task and split.

- demo (rova.data.demo): every problem type, for smoke runs of the tiny model;
- shapes (rova.data.shapes): the learnable task of experiment=learn_demo.

A split is a seed of the task's generator, so train, val and test never share a clip. Task and split names are
declared in rova.config.data (compose-time validation); a test checks this registry agrees.
"""

from __future__ import annotations

import os
from pathlib import Path

# demo: the training data renders seed 0 and the held-out demo benchmark seed 1, as they always have.
DEMO_SPLIT_SEEDS = {"train": 0, "test": 1, "val": 2}


def annotation_file(task: str, num_clips: int) -> str:
    """The file name the task's builder writes into its folder."""
    if task == "shapes":
        from rova.data.shapes import annotation_name

        return annotation_name(num_clips)
    if task == "demo":
        from rova.data.demo import annotation_name as demo_annotation_name

        return demo_annotation_name(num_clips)
    raise ValueError(f"unknown procedural task {task!r}")


def build_procedural(task: str, out_dir: str | os.PathLike, num_clips: int, split: str) -> Path:
    """Render `num_clips` clips of `task`'s `split` into out_dir; returns the annotation file written."""
    if task == "shapes":
        from rova.data.shapes import build_shapes_dataset

        return build_shapes_dataset(out_dir, num_clips=num_clips, split=split)
    if task == "demo":
        from rova.data.demo import build_demo_dataset

        if split not in DEMO_SPLIT_SEEDS:
            raise ValueError(f"split must be one of {', '.join(DEMO_SPLIT_SEEDS)}, got {split!r}")
        return build_demo_dataset(out_dir, num_clips=num_clips, seed=DEMO_SPLIT_SEEDS[split])
    raise ValueError(f"unknown procedural task {task!r}")
