"""stage=select: sampling, scoring, the kept file, the report, resume after a kill, and shards; in-process with a
fake seeded sampler on the demo clips (cheap), plus one run of the tiny model through the launcher."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.support.runs import launch, only_run_dir

# What the fake sampler may answer for each demo record (by index in the train file): one candidate is always
# right or always wrong; two candidates (right, wrong) give a mix whose split the seeded torch RNG decides.
ALWAYS_RIGHT, ALWAYS_WRONG = 0, 1
WRONG = {"multiple choice": "A", "numerical": "2", "OCR": "RAIN", "free-form": "Nothing moves at all.",
         "regression": "9.0", "grounding": "[0.0, 0.2]"}
N = 4


class Killed(Exception):
    """What a kill looks like from inside the stage: generation stops between two generate calls."""


class StubProcessor:
    """The one processor call the stage makes itself (render_prompt): the user turn's text."""

    def apply_chat_template(self, messages, add_generation_prompt=True, tokenize=False):
        return " ".join(block["text"] for m in messages for block in m["content"] if block.get("type") == "text")


class FakeSampler:
    """encode / generate as rova.inference's generators; each sample draws from torch's RNG (seeded by the stage)."""

    def __init__(self, candidates: dict[str, list[str]], fail_after: int | None = None):
        self.processor, self.candidates, self.fail_after, self.calls = StubProcessor(), candidates, fail_after, []

    def encode(self, text, frames, timing, is_image):
        return next(c for question, c in self.candidates.items() if question in text)

    def generate(self, prompts):
        import torch

        if self.fail_after is not None and len(self.calls) >= self.fail_after:
            raise Killed
        self.calls.append(len(prompts))
        draws = torch.randint(0, 1 << 30, (len(prompts),)).tolist()
        return [f"<think>hm</think><answer>{c[d % len(c)]}</answer>" for c, d in zip(prompts, draws)]


@pytest.fixture
def train_file(tmp_path, demo_file) -> tuple[Path, dict[str, list[str]], list[dict]]:
    """The 8 demo records (questions made unique, paths absolute) plus one missing and one broken video."""
    source = json.loads(Path(demo_file).read_text())
    for i, rec in enumerate(source):
        rec["problem"] = f"{rec['problem']} (question {i})"
        rec["path"] = str((Path(demo_file).parent / rec["path"]).resolve())
    missing, broken = dict(source[0], problem_id=100), dict(source[0], problem_id=101)
    missing["problem"], broken["problem"] = "Missing video (question 100)?", "Broken video (question 101)?"
    missing["path"] = str(tmp_path / "missing.mp4")
    (tmp_path / "broken.mp4").write_bytes(b"not a video")
    broken["path"] = str(tmp_path / "broken.mp4")
    source += [missing, broken]
    from rova.data.records import VideoQARecord

    candidates = {}
    for i, rec in enumerate(source):
        right = VideoQARecord(rec["problem_id"], rec["problem"], "video", rec["problem_type"], [], rec["solution"],
                              rec["path"]).answer
        wrong = WRONG[rec["problem_type"]]
        candidates[rec["problem"]] = [right] if i == ALWAYS_RIGHT else [wrong] if i == ALWAYS_WRONG else [right, wrong]
    path = tmp_path / "train.json"
    path.write_text(json.dumps(source))
    return path, candidates, source


def _cfg(tmp_path: Path, train: Path, *overrides: str):
    from rova.config.compose import load

    return load(["stage=select", f"data.train_file={train}", "data.build_demo=false", "data.media_root=null",
                 f"run.cache_dir={tmp_path / 'cache'}", "data.probe_workers=1", f"select.num_samples={N}",
                 f"select.batch_size={N}", *overrides])[1]


def _lines(run_dir: Path) -> dict[str, dict]:
    lines = [json.loads(line) for p in sorted(run_dir.glob("select_predictions*.jsonl"))
             for line in p.read_text().splitlines()]
    by_id = {line["item_id"]: line for line in lines}
    assert len(by_id) == len(lines), "a record was written twice"
    return by_id


def _run(cfg, run_dir: Path, sampler, rank: int = 0, world: int = 1):
    from rova.select.runner import run_select

    run_dir.mkdir(exist_ok=True)
    return run_select(cfg, run_dir, rank=rank, world=world, generator=sampler)


def test_select_keeps_the_records_whose_reward_varies(tmp_path, train_file):
    """The kept file, the counts, the histogram and the skipped media; the kept file is training data elsewhere."""
    from rova.select.rule import keep_status

    train, candidates, source = train_file
    cfg = _cfg(tmp_path, train)
    sampler = FakeSampler(candidates)
    run_dir = tmp_path / "run"
    report = _run(cfg, run_dir, sampler)
    assert sampler.calls == [N] * 8  # batch_size N: one record (N prompts) per generate call; no call for bad media
    lines = _lines(run_dir)
    ids = [str(r["problem_id"]) for r in source]
    assert sorted(lines) == sorted(ids)
    for item_id, line in lines.items():
        if line["status"] == "skipped":
            continue
        assert len(line["rewards"]) == N and line["rule"] in ("accuracy", "spread")
        assert line["mean"] == pytest.approx(sum(line["rewards"]) / N)
    assert lines[ids[ALWAYS_RIGHT]]["rewards"] == [1.0] * N and lines[ids[ALWAYS_WRONG]]["rewards"] == [0.0] * N
    grounding = next(line for line in lines.values() if line["problem_type"] == "grounding")
    assert grounding["iou"] == grounding["rewards"] and grounding["accuracy"] is None and grounding["rule"] == "spread"
    # The counts add up, overall, per problem type and against the rule applied to each line.
    assert report["records"] == 10 and report["skipped"] == 2
    statuses = ("kept", "too_easy", "too_hard", "no_variance", "skipped")
    assert sum(report[s] for s in statuses) == 10
    for status in statuses:
        assert sum(c[status] for c in report["by_problem_type"].values()) == report[status]
    assert report["too_easy"] >= 1 and report["too_hard"] >= 1 and report["kept"] >= 1
    expected_kept = [i for i in ids[:8] if keep_status(lines[i]["rewards"], lines[i]["rule"], min_mean=0.0, max_mean=1.0,
                                                       min_std=0.1) == "kept"]
    hist = report["mean_reward_histogram"]
    assert len(hist["edges"]) == 11 and sum(hist["kept"]) == report["kept"] == len(expected_kept)
    assert sum(hist["dropped"]) == report["too_easy"] + report["too_hard"] + report["no_variance"]
    assert {s["path"] for s in report["skipped_media"]} == {source[8]["path"], source[9]["path"]}
    assert all(s["reason"] for s in report["skipped_media"])
    # select.json: the kept records, input order, every key and value as in the input (paths already absolute).
    kept = json.loads((run_dir / "select.json").read_text())
    assert [str(r["problem_id"]) for r in kept] == expected_kept
    assert kept == [r for r in source if str(r["problem_id"]) in expected_kept]
    md = (run_dir / "select_report.md").read_text()
    assert "## Mean reward per record" in md and "select_hist.png" in md and "missing.mp4" in md
    assert (run_dir / "select_hist.png").read_bytes()[:4] == b"\x89PNG"
    # The kept file trains from another folder (what a recipe's data_from hands the next step).
    from rova.config.data import DataConfig
    from rova.training.dataset import load_training_data

    moved = tmp_path / "elsewhere" / "select.json"
    moved.parent.mkdir()
    shutil.copy(run_dir / "select.json", moved)
    data = load_training_data(DataConfig(train_file=str(moved), max_frames=8, max_pixels=6272, total_pixels=50176,
                                         probe_workers=1), 28, tmp_path / "cache")
    assert data.skipped == [] and len(data.dataset) == len(kept)


def test_relative_media_paths_are_written_absolute(tmp_path, demo_file):
    from rova.inference.items import DatasetItem, with_absolute_media
    from rova.data.records import parse_record

    raw = {"problem_id": 7, "problem": "How many?", "data_type": "video", "problem_type": "numerical",
           "solution": "<answer>3</answer>", "path": "./clips/a.mp4", "extra_key": [1, 2]}
    item = DatasetItem("7", raw, parse_record(raw, "f.json record 0", tmp_path, False))
    out = with_absolute_media(item)
    assert out["path"] == str((tmp_path / "clips" / "a.mp4").resolve()) and Path(out["path"]).is_absolute()
    assert {k: v for k, v in out.items() if k != "path"} == {k: v for k, v in raw.items() if k != "path"}


def test_a_killed_select_run_resumes_every_record_exactly_once(tmp_path, train_file):
    """Killed after 3 generate calls with a torn line behind; the relaunch does the rest, each record once, and
    every file equals the uninterrupted run's (sampling is seeded per record)."""
    train, candidates, _ = train_file
    cfg = _cfg(tmp_path, train)
    whole = tmp_path / "whole"
    _run(cfg, whole, FakeSampler(candidates))
    killed = tmp_path / "killed"
    with pytest.raises(Killed):
        _run(cfg, killed, FakeSampler(candidates, fail_after=3))
    predictions = killed / "select_predictions.jsonl"
    done_before = predictions.read_text().splitlines(keepends=True)
    assert len(done_before) == 2 + 3  # the two unreadable media, then one line per finished call
    assert not (killed / "select_report.json").exists()
    with open(predictions, "a") as handle:  # a line torn by the kill
        handle.write('{"cell": "select", "item_id": "7", "rew')
    sampler = FakeSampler(candidates)
    _run(cfg, killed, sampler)
    assert sampler.calls == [N] * 5  # only the 5 records not done
    assert _lines(killed) == _lines(whole)
    for name in ("select.json", "select_report.json", "select_report.md"):
        assert (killed / name).read_text() == (whole / name).read_text().replace(str(whole), str(killed)), name
    # A relaunch of a finished run generates nothing and writes no line twice.
    sampler = FakeSampler(candidates)
    _run(cfg, killed, sampler)
    assert sampler.calls == [] and _lines(killed) == _lines(whole)


def test_two_shards_equal_one_process(tmp_path, train_file):
    """Shard 1 first (no merge yet), then shard 0 merges: the lines and the kept file are the single process's."""
    train, candidates, _ = train_file
    cfg = _cfg(tmp_path, train)
    single = tmp_path / "single"
    _run(cfg, single, FakeSampler(candidates))
    sharded = tmp_path / "sharded"
    assert _run(cfg, sharded, FakeSampler(candidates), rank=1, world=2) is None
    assert not (sharded / "select.json").exists()
    report = _run(cfg, sharded, FakeSampler(candidates), rank=0, world=2)
    assert len(list(sharded.glob("select_predictions.shard*-of-2.jsonl"))) == 2
    assert _lines(sharded) == _lines(single)
    assert (sharded / "select.json").read_text() == (single / "select.json").read_text()
    assert report == json.loads((single / "select_report.json").read_text())


def test_thresholds_move_records_between_kept_and_dropped(tmp_path, train_file):
    """The same samples under other thresholds: a mean bound above every mean drops no record as too easy."""
    train, candidates, _ = train_file
    loose = _run(_cfg(tmp_path, train, "select.min_std=0.0"), tmp_path / "loose", FakeSampler(candidates))
    strict = _run(_cfg(tmp_path, train, "select.min_mean=0.5", "select.min_std=0.45"), tmp_path / "strict",
                  FakeSampler(candidates))
    assert _lines(tmp_path / "loose") == _lines(tmp_path / "strict")  # the thresholds change no sample
    assert loose["kept"] >= strict["kept"] and loose["no_variance"] <= strict["no_variance"]
    assert strict["too_hard"] >= loose["too_hard"]


def test_select_runs_the_tiny_model_through_the_launcher(tmp_path, cache_dir):
    """The one end-to-end run: launch.py stage=select on the tiny model and demo clips; files, counts, console."""
    proc = launch(tmp_path, cache_dir, "stage=select", "data.demo_num_clips=4", "select.num_samples=2",
                  "select.max_new_tokens=12", "select.batch_size=4", "logger=none")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "items/s" in proc.stdout and "[rova] select done: 4 records" in proc.stdout
    run_dir = only_run_dir(tmp_path / "outputs")
    report = json.loads((run_dir / "select_report.json").read_text())
    assert report["records"] == 4 == sum(report[s] for s in ("kept", "too_easy", "too_hard", "no_variance", "skipped"))
    lines = [json.loads(line) for line in (run_dir / "select_predictions.jsonl").read_text().splitlines()]
    assert len(lines) == 4 and all(len(line["rewards"]) == 2 for line in lines if line["status"] == "scored")
    assert len(json.loads((run_dir / "select.json").read_text())) == report["kept"]
    for name in ("select_report.md", "select_hist.png"):
        assert (run_dir / name).stat().st_size > 0
    from rova.config.stage import get_spec

    assert get_spec("select").outcome(run_dir).startswith(f"kept {report['kept']} of 4 records")


def test_the_sampling_generator_follows_rollout_and_the_select_keys(monkeypatch, tmp_path, tiny_model_dir):
    """select.* sampling reaches the HF generation config and vLLM's sampling params (a fake vllm module: vLLM
    cannot run on CPU); the vLLM engine is seeded with stage.seed."""
    import sys
    import types
    from types import SimpleNamespace

    from transformers import AutoProcessor

    from rova.config.compose import load_typed
    from rova.inference.sampling import SamplingGenerator, SamplingVLLMGenerator, make_sampling_generator

    processor = AutoProcessor.from_pretrained(tiny_model_dir)
    keys = ["stage=select", f"model.path={tiny_model_dir}", "select.temperature=0.7", "select.top_p=0.9",
            "select.max_new_tokens=33", "stage.seed=5"]

    def make(cfg):
        s = cfg.select
        return make_sampling_generator(cfg, None, processor, max_new_tokens=s.max_new_tokens,
                                       temperature=s.temperature, top_p=s.top_p, stage="select")

    hf = make(load_typed(keys))
    assert isinstance(hf, SamplingGenerator) and hf.generation_config.do_sample
    assert (hf.generation_config.temperature, hf.generation_config.top_p, hf.generation_config.top_k,
            hf.generation_config.max_new_tokens) == (0.7, 0.9, 0, 33)
    vllm = types.ModuleType("vllm")
    vllm.SamplingParams = lambda **kwargs: SimpleNamespace(**kwargs)
    monkeypatch.setitem(sys.modules, "vllm", vllm)
    engine = make(load_typed([*keys, "rollout=vllm"]))
    assert isinstance(engine, SamplingVLLMGenerator) and engine.engine_kwargs()["seed"] == 5
    params = engine.sampling_params
    assert (params.temperature, params.top_p, params.max_tokens) == (0.7, 0.9, 33)
