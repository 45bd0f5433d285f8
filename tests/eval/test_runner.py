"""The eval loop (rova.eval.runner.score_cells) without a model: what it decodes, renders, generates and writes."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np

from rova.config.eval import EvalConfig
from rova.config.reward import RewardConfig
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
    cfg = SimpleNamespace(eval=eval_cfg, benchmark=SimpleNamespace(subtask_keys=["kind"]), reward=RewardConfig())
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


# --- Progress output (rova.inference.progress) through the real loop ------------------------------------------------

class Clock:
    """A fake time.monotonic: the generator below moves it 1 s per generate call."""

    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class TimedGenerator(FakeGenerator):
    """Each generate call takes 1 s of `clock`; `during` (optional) runs first, e.g. another shard's writes."""

    def __init__(self, clock, during=lambda: None):
        super().__init__()
        self.clock, self.during = clock, during

    def generate(self, prompts):
        self.during()
        self.clock.now += 1.0
        return super().generate(prompts)


class MemoryStore:
    """A PredictionStore without the file (88,000 fsyncs would take longer than the loop itself)."""

    def __init__(self):
        self.records = {}

    def done(self, cell, item_id):
        return (cell, item_id) in self.records

    def extend(self, records):
        self.records.update(((r["cell"], r["item_id"]), r) for r in records)


def _progress_lines(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith("[rova] eval")]


def _score(items, eval_cfg, store, generator, progress, shard=0, num_shards=1):
    cfg = SimpleNamespace(eval=eval_cfg, benchmark=SimpleNamespace(subtask_keys=["kind"]), reward=RewardConfig())
    score_cells(cfg, items, lambda item: (_clip(item), 2.0, False), generator, store, shard, num_shards,
                lambda item: f"question of {item.item_id}", progress)


def test_a_4000_item_22_cell_grid_prints_a_bounded_number_of_progress_lines(capsys, monkeypatch):
    """Not a terminal (capsys): one line per 5 % of the work plus a first and a last, not one per generate batch
    (the old progress printed 22,000 lines here)."""
    import rova.eval.runner as runner

    # The corruptions are tested above; here they would cost ~10 s of the ~2 s loop for nothing the test checks.
    monkeypatch.setattr(runner, "corrupted_clip", lambda frames, variant, severity, seed, item_id: frames)
    eval_cfg = EvalConfig(corruptions=["frame_drop", "static_blocks", "shuffle", "dusk", "contrast", "night", "rain"],
                          severities=[1, 3, 5], batch_size=4)
    items = _items(4000)
    cells = len(grid_cells(eval_cfg))
    assert cells == 22
    store = MemoryStore()
    _score(items, eval_cfg, store, FakeGenerator(), Progress(len(items) * cells, enabled=True))
    assert len(store.records) == 88_000
    lines = _progress_lines(capsys.readouterr().out)
    assert len(lines) < 100, f"{len(lines)} progress lines, e.g. {lines[:3]}"
    assert lines[0] == "[rova] eval 0/88000 (0%): 88000 to generate"
    assert "4400/88000 (5%)" in lines[1] and "items/s  ETA " in lines[1] and lines[1].endswith("rain@5")
    assert lines[-1].startswith("[rova] eval 88000/88000 (100%) in ") and lines[-1].endswith("over 88000 generated")


def test_a_resumed_run_counts_the_stores_work_as_done_and_rates_only_what_it_generates(tmp_path, capsys):
    """The issue's "16/30 ... 1148 items/s, ETA 0s": what the store held is done up front, never in the rate."""
    items = _items(20)
    eval_cfg = EvalConfig(corruptions=["night"], severities=[1, 3], batch_size=4)  # 3 cells: 60 lines
    _run(tmp_path, items, eval_cfg, name="full.jsonl")
    lines = (tmp_path / "full.jsonl").read_text().splitlines(keepends=True)
    (tmp_path / "part.jsonl").write_text("".join(lines[:36]))  # killed after 3 chunks of 4 items x 3 cells
    clock = Clock()
    store = PredictionStore(tmp_path / "part.jsonl")
    _score(items, eval_cfg, store, TimedGenerator(clock), Progress(60, enabled=True, clock=clock))
    assert len(store.records) == 60
    assert _progress_lines(capsys.readouterr().out) == [
        "[rova] eval resuming: 36/60 (60%) already done, 24 to generate",
        # 6 generate calls of 4 items, 1 s each: 4 items/s, whatever the store held.
        "[rova] eval 40/60 (67%)  4.00 items/s  ETA 5s  clean",
        "[rova] eval 44/60 (73%)  4.00 items/s  ETA 4s  night@1",
        "[rova] eval 48/60 (80%)  4.00 items/s  ETA 3s  night@3",
        "[rova] eval 52/60 (87%)  4.00 items/s  ETA 2s  clean",
        "[rova] eval 56/60 (93%)  4.00 items/s  ETA 1s  night@1",
        "[rova] eval 60/60 (100%) in 6s: 4.00 items/s over 24 generated",
    ]


def test_rank_0s_progress_counts_every_shards_lines(tmp_path, capsys):
    """Shard 0 of 2 shows the total of both: shard 1's lines are read from its file (held at the start: done;
    gained while shard 0 works: generated)."""
    items = _items(20)  # 10 items x 3 cells per shard
    eval_cfg = EvalConfig(corruptions=["night"], severities=[1, 3], batch_size=4)
    other = tmp_path / "predictions.shard1-of-2.jsonl"
    theirs = [json.dumps({"cell": "clean", "item_id": f"b/{i}"}) + "\n" for i in range(1, 20, 2)] * 3
    other.write_text("".join(theirs[:6]))

    def shard_1_works():  # 4 more lines per shard-0 batch, until shard 1 is done
        written = len(other.read_text().splitlines())
        with open(other, "a") as handle:
            handle.write("".join(theirs[written : written + 4]))

    clock = Clock()
    progress = Progress(60, enabled=True, clock=clock, others=[other], poll_s=0)
    store = PredictionStore(tmp_path / "predictions.shard0-of-2.jsonl")
    _score(items, eval_cfg, store, TimedGenerator(clock, during=shard_1_works), progress, shard=0, num_shards=2)
    assert len(store.records) == 30 and len(other.read_text().splitlines()) == 30
    lines = _progress_lines(capsys.readouterr().out)
    assert lines[0] == "[rova] eval resuming: 6/60 (10%) already done, 54 to generate"
    # 9 batches (1 s each) of shard 0 (30 lines) while shard 1 wrote 24: 54 generated, 6 a second.
    assert lines[-1] == "[rova] eval 60/60 (100%) in 9s: 6.00 items/s over 54 generated"
    assert len(lines) < 25


def test_caption_items_through_the_loop_name_their_scorer_and_count_the_judges_fallbacks(tmp_path, monkeypatch):
    """A real local judge endpoint: it answers the first caption, then replies nonsense (the rule scores the rest);
    the prediction lines carry the flags and results.json / report.md the scorer and the count."""
    from rova.config.reward import CaptionJudgeConfig
    from rova.eval.runner import write_results
    from tests.support.judge_server import JudgeServer, Reply

    for var in ("http_proxy", "HTTP_PROXY"):
        monkeypatch.delenv(var, raising=False)
    record = SimpleNamespace(solution="<answer>a man opens the fridge\nhe pours milk</answer>", problem_type="caption")
    items = [SimpleNamespace(item_id=f"c/{i}", benchmark="c", record=record, subtasks={}, subtask_matched={})
             for i in range(3)]

    class Captioner(FakeGenerator):
        def generate(self, prompts):
            return ["<answer>A man opens the fridge.</answer>"] * len(prompts)

    eval_cfg = EvalConfig(batch_size=3)
    with JudgeServer([Reply("[1, 2]"), Reply("nonsense")]) as server:
        reward = RewardConfig(caption_scorer="judge", caption_judge=CaptionJudgeConfig(
            base_url=server.base_url, model="judge-m", retries=0, timeout_s=2.0, max_concurrency=1))
        cfg = SimpleNamespace(eval=eval_cfg, benchmark=SimpleNamespace(subtask_keys=[]), reward=reward,
                              model=SimpleNamespace(path="m"))
        store = PredictionStore(tmp_path / "p.jsonl")
        score_cells(cfg, items, lambda item: (_clip(SimpleNamespace(item_id="b/0")), 2.0, False), Captioner(), store,
                    0, 1, lambda item: "describe", Progress(3, enabled=False))
    rows = sorted(store.records.values(), key=lambda r: r["item_id"])
    assert [r["score"] for r in rows] == [1.0, 0.5, 0.5]  # the judge's both events, then the rule's one of two
    assert [r["judge_fallback"] for r in rows] == [False, True, True]
    assert {r["caption_scorer"] for r in rows} == {"judge"}
    run = tmp_path / "run"
    run.mkdir()
    results = write_results(cfg, run, rows, [], {})
    caption = results["config"]["scoring"]["caption"]
    assert (caption["scorer"], caption["items_judged"], caption["judge_fallbacks"]) == ("judge", 3, 2)
    assert "caption recall: judge `judge-m`: 3 judged, 2 scored by the rule instead" in (run / "report.md").read_text()
