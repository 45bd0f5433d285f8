"""Caption records through launch.py on the tiny model, with the judge at a REAL local endpoint
(tests/support/judge_server, 127.0.0.1): stage=grpo logs the caption/* metrics every step, stage=eval names the
scorer and counts the judge's fallbacks in results.json and on each prediction line."""

from __future__ import annotations

import json

import pytest

from tests.support.judge_server import JudgeServer, Reply
from tests.support.runs import launch, only_run_dir

EVENTS = "<answer>a shape moves across the frame\nthe shape changes colour\nthink about green</answer>"


@pytest.fixture
def caption_file(demo_file, tmp_path):
    """The demo clips, each asked as a caption record."""
    records = json.loads(demo_file.read_text())
    captions = [{**record, "problem_type": "caption", "options": [], "problem": "Describe the video.",
                 "solution": EVENTS} for record in records]
    path = demo_file.parent / "captions.json"  # beside the clips: media paths stay relative to it
    path.write_text(json.dumps(captions))
    return path


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch):
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)


def judge_overrides(server: JudgeServer) -> list[str]:
    return ["reward=videochat_r1", "reward.caption_scorer=judge", f"reward.caption_judge.base_url={server.base_url}",
            "reward.caption_judge.model=judge-test", "reward.caption_judge.retries=0", "logger=none"]


def test_a_grpo_step_on_caption_records_logs_the_judges_counts(tmp_path, cache_dir, caption_file):
    with JudgeServer([Reply("[1]")]) as server:
        proc = launch(tmp_path, cache_dir, "stage=grpo", "stage.max_steps=1", f"data.train_file={caption_file}",
                      "data.build_demo=false", *judge_overrides(server))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (metrics,) = [json.loads(line) for line in (only_run_dir(tmp_path / "outputs") / "metrics.jsonl").open()
                  if "caption/judged" in line]
    # What the tiny model wrote decides how many completions held caption text: each of those was one request.
    assert metrics["caption/judged"] == len(server.requests) and metrics["caption/judge_fallbacks"] == 0.0
    assert metrics["rewards/clean/accuracy/mean"] is not None  # caption recall is the accuracy of caption rows


def test_eval_on_caption_records_names_the_judge_and_counts_its_fallbacks(tmp_path, cache_dir, caption_file):
    """eval.fallback_whole_output: the tiny model's untagged outputs are judged too; the judge answers the first
    request and replies nonsense to every other, so all but one item are scored by the rule and counted."""
    with JudgeServer([Reply("[1, 2]"), Reply("I cannot tell.")]) as server:
        proc = launch(tmp_path, cache_dir, "stage=eval", f"benchmark.file={caption_file}", "benchmark.build_demo=false",
                      "benchmark.max_items=4", "eval.max_new_tokens=16", "eval.fallback_whole_output=true",
                      "reward.caption_judge.max_concurrency=1", *judge_overrides(server))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    run = only_run_dir(tmp_path / "outputs")
    caption = json.loads((run / "results.json").read_text())["config"]["scoring"]["caption"]
    lines = [json.loads(line) for line in (run / "predictions.jsonl").open()]
    judged = [line for line in lines if line["judge_fallback"] is not None]
    assert caption["scorer"] == "judge" and caption["judge"]["model"] == "judge-test" and caption["items"] == 4
    assert caption["items_judged"] == len(judged) == len(server.requests) >= 1
    assert caption["judge_fallbacks"] == sum(line["judge_fallback"] for line in lines) == len(judged) - 1
    assert {line["caption_scorer"] for line in lines} == {"judge"}
    assert "caption recall: judge `judge-test`" in (run / "report.md").read_text()
