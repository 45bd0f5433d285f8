"""The eval loop (rova.eval.runner.score_cells) without a model: what it decodes, renders, generates and writes."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np

from rova.config.eval import EvalConfig
from rova.eval.cells import cell_name
from rova.eval.runner import clip_digest, corrupted_clip, grid_cells, score_cells
from rova.inference.predictions import PredictionStore
from rova.inference.progress import Progress


def _items(n: int) -> list:
    record = SimpleNamespace(solution="<answer>A</answer>", problem_type="multiple choice")
    return [SimpleNamespace(item_id=f"b/{i}", benchmark="b", record=record, subtasks={"kind": f"k{i % 2}"}, subtask_matched={})
            for i in range(n)]


def _clip(item) -> np.ndarray:
    seed = int(item.item_id.split("/")[1])
    return np.random.default_rng(seed).integers(0, 256, (4, 16, 16, 3), dtype=np.uint8)


class FakeGenerator:
    """Encodes a prompt as (text, clip digest); answers "A" for even clip digests. Records every batch."""

    def __init__(self):
        self.batches: list[list[tuple[str, str]]] = []

    def encode(self, text, frames, timing, is_image):
        return (text, clip_digest(frames))

    def generate(self, prompts):
        self.batches.append(list(prompts))
        return [f"<answer>{'A' if int(digest, 16) % 2 else 'B'}</answer>" for _, digest in prompts]


def _run(tmp_path, items, eval_cfg, store=None, name="p.jsonl"):
    cfg = SimpleNamespace(eval=eval_cfg, benchmark=SimpleNamespace(subtask_keys=["kind"]))
    calls = {"read": [], "render": []}

    def read_clip(item):
        calls["read"].append(item.item_id)
        return _clip(item), 2.0, False

    def render_text(item):
        calls["render"].append(item.item_id)
        return f"question of {item.item_id}"

    generator = FakeGenerator()
    store = store or PredictionStore(tmp_path / name)
    score_cells(cfg, items, read_clip, generator, store, 0, 1, render_text,
                Progress(len(items) * len(grid_cells(eval_cfg)), enabled=False))
    return generator, calls, store


def test_each_clip_is_decoded_and_rendered_once_for_all_cells(tmp_path):
    items = _items(7)
    eval_cfg = EvalConfig(corruptions=["night", "fog"], severities=[1, 5], batch_size=3)
    generator, calls, store = _run(tmp_path, items, eval_cfg)
    assert sorted(calls["read"]) == sorted(calls["render"]) == sorted(i.item_id for i in items)
    cells = [cell_name(v, s) for v, s in grid_cells(eval_cfg)]
    assert len(store.records) == len(items) * len(cells)
    # The batches of a cell-by-cell pass: every cell's rows are the same chunks of 3 items, in order, and each
    # row shows the cell's clip (clean, or the corrupted copy of the item's clean clip).
    def digest(item, variant, severity):
        clip = _clip(item)
        return clip_digest(clip if variant is None else corrupted_clip(clip, variant, severity, 0, item.item_id))

    chunks = [items[i : i + 3] for i in range(0, len(items), 3)]
    expected = [tuple((f"question of {item.item_id}", digest(item, v, s)) for item in chunk)
                for v, s in grid_cells(eval_cfg) for chunk in chunks]
    assert sorted(tuple(batch) for batch in generator.batches) == sorted(expected)
    for (cell, item_id), row in store.records.items():
        item = items[int(item_id.split("/")[1])]
        v, s = next((v, s) for v, s in grid_cells(eval_cfg) if cell_name(v, s) == cell)
        assert row["clip_sha1"] == digest(item, v, s) and row["kind"] == item.subtasks["kind"]


def test_a_resumed_run_generates_only_what_is_missing_and_writes_each_line_once(tmp_path):
    items = _items(5)
    eval_cfg = EvalConfig(corruptions=["night"], severities=[3], batch_size=2)
    _, _, full = _run(tmp_path, items, eval_cfg, name="full.jsonl")
    lines = (tmp_path / "full.jsonl").read_text().splitlines(keepends=True)
    assert len(lines) == 10
    # A kill after the first chunk (items 0-1 in both cells: 4 lines) and in the middle of the next line.
    (tmp_path / "part.jsonl").write_text("".join(lines[:4]) + lines[4][:10])
    assert {json.loads(line)["item_id"] for line in lines[:4]} == {"b/0", "b/1"}
    generator, calls, store = _run(tmp_path, items, eval_cfg, store=PredictionStore(tmp_path / "part.jsonl"))
    rows = [json.loads(line) for line in (tmp_path / "part.jsonl").read_text().splitlines()]
    assert len(rows) == len({(r["cell"], r["item_id"]) for r in rows}) == len(lines)
    assert {(r["cell"], r["item_id"]): r for r in rows} == full.records
    assert sum(len(batch) for batch in generator.batches) == len(lines) - 4
    assert sorted(calls["read"]) == ["b/2", "b/3", "b/4"]  # the finished chunk is not decoded again
