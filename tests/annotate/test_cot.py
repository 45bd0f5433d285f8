"""stage=cot on the tiny teacher and the demo data: cot.json, the report, resume, min_score, and the loaders."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.support.runs import launch, only_run_dir

# cot.batch_size=4 prompts / 2 samples = 2 records per generate call.
SMALL = ("stage=cot", "data.demo_num_clips=6", "cot.num_samples=2", "cot.max_new_tokens=24", "cot.batch_size=4",
         "logger=none")


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _run(tmp: Path, cache_dir: Path, *overrides: str) -> Path | None:
    proc = launch(tmp, cache_dir, *SMALL, *overrides)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "items/s" in proc.stdout and "ETA" in proc.stdout
    return None if any(o.startswith("run.dir=") for o in overrides) else only_run_dir(tmp / "outputs")


@pytest.fixture(scope="module")
def cot_run(tmp_path_factory, cache_dir) -> Path:
    return _run(tmp_path_factory.mktemp("cot"), cache_dir, "cot.min_score=0")


def test_cot_json_keeps_every_field_with_the_kept_sample(cot_run):
    from rova.annotate.runner import split_parts
    from rova.data.records import load_records

    report = json.loads((cot_run / "cot_report.json").read_text())
    source = json.loads(Path(report["train_file"]).read_text())[:6]
    lines = {line["item_id"]: line for line in _lines(cot_run / "cot_predictions.jsonl")}
    out = json.loads((cot_run / "cot.json").read_text())
    assert len(lines) == 6 and len(out) == report["kept"]
    # The counts add up: overall, per problem type, and against the prediction lines.
    assert report["records"] == 6 == report["kept"] + report["dropped"] + report["skipped"]
    for status in ("kept", "dropped", "skipped"):
        assert sum(c[status] for c in report["by_problem_type"].values()) == report[status]
        assert sum(line["status"] == status for line in lines.values()) == report[status]
    assert sum(report["dropped_reasons"].values()) == report["dropped"]
    by_id = {str(r["problem_id"]): r for r in source}
    records = {r.sample_id: r for r in load_records(cot_run / "cot.json")}
    for rec in out:
        original, line = by_id[str(rec["problem_id"])], lines[str(rec["problem_id"])]
        assert line["status"] == "kept" and len(line["completions"]) == 2
        process, answer = split_parts(line["completions"][line["best"]])
        assert (rec["process"], rec["teacher_answer"]) == (process, answer)
        assert rec["process"].startswith("<think>") and rec["teacher_answer"].startswith("<answer>")
        assert rec["solution"] == original["solution"], "the ground truth stays the solution (issue 21, item 5)"
        assert set(original) <= set(rec)
        for key, value in original.items():
            if key == "path":  # absolute, and the same file the relative path named
                assert Path(rec[key]).is_absolute()
                assert Path(rec[key]).resolve() == (Path(report["train_file"]).parent / value).resolve()
            elif key != "process":
                assert rec[key] == value, key
        assert records[str(rec["problem_id"])].process == rec["process"]


def test_a_killed_cot_run_resumes_every_item_exactly_once(cot_run, tmp_path, cache_dir):
    """Two records done (one generate call) and a torn third line, as a kill leaves them."""
    resumed = tmp_path / "resumed"  # the run dir as the kill left it: its config, and the predictions so far
    resumed.mkdir()
    shutil.copy(cot_run / "resolved.yaml", resumed / "resolved.yaml")
    full = (cot_run / "cot_predictions.jsonl").read_text().splitlines(keepends=True)
    (resumed / "cot_predictions.jsonl").write_text("".join(full[:2]) + full[2][:30])
    _run(tmp_path, cache_dir, "cot.min_score=0", f"run.dir={resumed}")
    again = _lines(resumed / "cot_predictions.jsonl")
    assert sorted(line["item_id"] for line in again) == sorted(json.loads(line)["item_id"] for line in full)
    # Sampling is seeded per generate call, so resuming at a call boundary reproduces the uninterrupted run.
    assert again == [json.loads(line) for line in full]
    assert (resumed / "cot.json").read_text() == (cot_run / "cot.json").read_text()


def test_min_score_one_drops_what_the_teacher_gets_wrong(tmp_path, cache_dir):
    run_dir = _run(tmp_path, cache_dir, "cot.min_score=1.0")
    report = json.loads((run_dir / "cot_report.json").read_text())
    lines = _lines(run_dir / "cot_predictions.jsonl")
    assert report["dropped"] > 0 and report["kept"] + report["dropped"] == 6
    assert len(json.loads((run_dir / "cot.json").read_text())) == report["kept"]
    for line in lines:
        if line["status"] == "kept":
            assert line["scores"][line["best"]] >= 1.0
        else:
            assert max(line["scores"]) < 1.0 and line["reason"]
    assert set(report["dropped_reasons"]) <= {"best score < cot.min_score", "no sample has an <answer> span"}


def test_cot_file_is_training_data_from_another_folder(cot_run, tmp_path):
    from rova.config.data import DataConfig
    from rova.training.dataset import load_training_data

    moved = tmp_path / "elsewhere" / "cot.json"
    moved.parent.mkdir()
    shutil.copy(cot_run / "cot.json", moved)
    kept = json.loads(moved.read_text())
    # cot.min_score=0 keeps the tiny teacher's best sample whatever it answered (a digit for a multiple-choice
    # question, say); the record's ground truth stays its solution, so every kept record is training data.
    assert any(r["teacher_answer"] != r["solution"] for r in kept), "the seeded tiny teacher answers some wrong"
    data = load_training_data(DataConfig(train_file=str(moved), max_frames=8, max_pixels=6272, total_pixels=50176,
                                         probe_workers=1), 28, tmp_path / "cache")
    assert data.skipped == [] and data.bad_records == [] and len(data.dataset) == len(kept)
    assert list(data.dataset["solution"]) == [r["solution"] for r in kept]


def test_an_untagged_ground_truth_is_written_in_the_schema_form():
    from rova.annotate.runner import CotItem, cot_record
    from rova.data.records import parse_record

    raw = {"problem_id": 7, "problem": "How many?", "data_type": "video", "problem_type": "numerical",
           "solution": " 3 ", "path": "/clips/a.mp4"}
    item = CotItem("7", raw, parse_record(raw, "f.json record 0", Path("/clips"), False))
    line = {"completions": ["count</think><answer>2</answer>"], "best": 0}
    out = cot_record(item, line)
    assert (out["process"], out["solution"], out["teacher_answer"]) == (
        "<think>count</think>", "<answer>3</answer>", "<answer>2</answer>")


class FakeTeacher:
    """encode/generate as the Generator's; answers every prompt right, in the Video-R1 format."""

    def __init__(self, processor, answers: dict[str, str]):
        self.processor, self.answers, self.calls = processor, answers, []

    def encode(self, text, frames, fps, is_image):
        return next(gt for q, gt in self.answers.items() if q in text)

    def generate(self, prompts):
        self.calls.append(len(prompts))
        return [f"<think>let me think about {gt}</think> <answer>{gt}</answer>" for gt in prompts]


def test_broken_media_are_skipped_and_shards_merge(tmp_path, cache_dir, demo_file, tiny_model_dir):
    """Missing and undecodable media are skipped with reasons (never replaced); two shards merge into one file."""
    from transformers import AutoProcessor

    from rova.annotate.runner import run_cot
    from rova.config.compose import load_typed

    source = json.loads(Path(demo_file).read_text())[:5]
    for rec in source:
        rec["path"] = str((Path(demo_file).parent / rec["path"]).resolve())
    source[1]["path"] = str(tmp_path / "missing.mp4")
    (tmp_path / "broken.mp4").write_bytes(b"not a video")
    source[3]["path"] = str(tmp_path / "broken.mp4")
    train = tmp_path / "train.json"
    train.write_text(json.dumps(source))
    cfg = load_typed(["stage=cot", f"model.path={tiny_model_dir}", f"data.train_file={train}",
                   f"run.cache_dir={tmp_path / 'cache'}", "data.probe_workers=1", "cot.num_samples=3",
                   "cot.batch_size=6", "cot.min_score=1.0"])
    from rova.data.records import load_records

    answers = {r.problem: r.answer for r in load_records(train)}
    teacher = FakeTeacher(AutoProcessor.from_pretrained(tiny_model_dir), answers)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    assert run_cot(cfg, run_dir, rank=1, world=2, generator=teacher) is None  # shard 1 first: no merge yet
    assert not (run_dir / "cot.json").exists()
    report = run_cot(cfg, run_dir, rank=0, world=2, generator=teacher)
    assert all(n % 3 == 0 and n <= 6 for n in teacher.calls)  # each record k times, <= batch_size prompts a call
    assert report["records"] == 5 and report["skipped"] == 2 and report["kept"] == 3 and report["dropped"] == 0
    assert {s["path"] for s in report["skipped_media"]} == {source[1]["path"], source[3]["path"]}
    assert all(s["reason"] for s in report["skipped_media"])
    out = json.loads((run_dir / "cot.json").read_text())
    assert [r["problem_id"] for r in out] == [source[i]["problem_id"] for i in (0, 2, 4)]
    for rec in out:
        assert rec["solution"] == rec["teacher_answer"] == f"<answer>{answers[rec['problem']]}</answer>"
        assert rec["process"] == f"<think>let me think about {answers[rec['problem']]}</think>"
    # A re-run finds everything done: nothing generated, nothing duplicated.
    teacher.calls.clear()
    run_cot(cfg, run_dir, rank=1, world=2, generator=teacher)
    run_cot(cfg, run_dir, rank=0, world=2, generator=teacher)
    assert teacher.calls == []
    assert sum(len(_lines(p)) for p in run_dir.glob("cot_predictions.shard*.jsonl")) == 5


def test_split_parts():
    from rova.annotate.runner import split_parts

    assert split_parts("<think>a</think> <answer>B</answer>") == ("<think>a</think>", "<answer>B</answer>")
    assert split_parts(" so B <answer>B</answer>") == ("<think>so B</think>", "<answer>B</answer>")
    assert split_parts("<think>a</think> no answer") == ("<think>a</think>", None)
    # A lone tag is dropped, not wrapped again (issue 21, item 5: "<think>x</think></think>" reached cot.json).
    assert split_parts("x</think><answer>B</answer>") == ("<think>x</think>", "<answer>B</answer>")
    assert split_parts("<think>x <answer>B</answer>") == ("<think>x</think>", "<answer>B</answer>")
    assert split_parts("</think><answer>B</answer>") == (None, "<answer>B</answer>")
