"""Caption recall, the judge (rova.rewards.caption_judge) against a REAL local HTTP server (tests/support/judge_server):
the request it sends, the replies it understands, and every failure (malformed reply, timeout, HTTP errors) scored
by the rule instead and counted (rova.rewards.correctness). Nothing reaches the network: the server is 127.0.0.1."""

from __future__ import annotations

import numpy as np
import pytest

from rova.config.compose import load, load_typed
from rova.config.reward import CaptionJudgeConfig, RewardConfig
from rova.errors import ConfigError
from rova.rewards.caption_judge import CaptionJudge, JudgeFailure, parse_covered
from rova.rewards import correctness
from rova.rewards.correctness import score_correctness
from tests.support.judge_server import JudgeServer, Reply

EVENTS = ["a man opens the fridge", "he takes out the milk", "he pours milk into a glass"]
SOLUTION = "<answer>" + "\n".join(EVENTS) + "</answer>"
CAPTION = "<think>t</think><answer>A man opens the fridge.</answer>"  # the rule: 1 of 3 events
RULE_SCORE = 1 / 3


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch):
    """urllib honours *_proxy variables: the local server must be reached directly."""
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)


def judge_config(server: JudgeServer, **settings) -> RewardConfig:
    judge = {"base_url": server.base_url, "model": "judge-test", "timeout_s": 2.0, "retries": 0,
             "retry_backoff_s": 0.0, **settings}
    return RewardConfig(caption_scorer="judge", caption_judge=CaptionJudgeConfig(**judge))


def test_the_judges_list_is_the_recall_and_the_request_is_a_chat_completion(monkeypatch):
    monkeypatch.setenv("ROVA_TEST_JUDGE_KEY", "secret-123")
    with JudgeServer([Reply("[1, 3]")]) as server:
        cfg = judge_config(server, api_key_env="ROVA_TEST_JUDGE_KEY", max_tokens=64)
        scored = score_correctness([CAPTION], [SOLUTION], ["caption"], cfg)
    assert scored.scores.tolist() == [pytest.approx(2 / 3)]  # the judge's, not the rule's 1/3
    assert scored.judge_fallbacks.tolist() == [0.0] and scored.num_fallbacks == 0
    (request,) = server.requests
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["Authorization"] == "Bearer secret-123"
    body = request["body"]
    assert body["model"] == "judge-test" and body["temperature"] == 0.0 and body["max_tokens"] == 64
    prompt = body["messages"][-1]["content"]
    assert "Caption:\nA man opens the fridge." in prompt  # the <answer> content, not the reasoning
    assert "1. a man opens the fridge\n2. he takes out the milk\n3. he pours milk into a glass" in prompt


def test_no_key_variable_sends_no_authorization():
    with JudgeServer([Reply("[]")]) as server:
        scored = score_correctness([CAPTION], [SOLUTION], ["caption"], judge_config(server))
    assert scored.scores.tolist() == [0.0] and scored.judge_fallbacks.tolist() == [0.0]
    assert "Authorization" not in server.requests[0]["headers"]


@pytest.mark.parametrize("content,covered", [
    ("[2]", {1}),
    ("```json\n[1, 2]\n```", {0, 1}),
    ('{"covered": [3]}', {2}),
    ("Event 1 is described, event [2] is not.\nAnswer: [1, 1, \"3\"]", {0, 2}),
    ("[]", set()),
    ("[3.0]", {2}),
])
def test_replies_understood(content, covered):
    assert parse_covered(content, 3) == covered


@pytest.mark.parametrize("content", ["events 1 and 2", "[0]", "[4]", "[true]", "[\"one\"]", "[[1]]", "{\"x\": 1}", ""])
def test_replies_refused(content):
    with pytest.raises(JudgeFailure):
        parse_covered(content, 3)


@pytest.mark.parametrize("reply,reason", [
    (Reply("The caption covers the first event."), "no JSON list"),
    (Reply("[7]"), "not an event number"),
    (Reply(raw=b"<html>busy</html>"), "not JSON"),
    (Reply(raw=b'{"choices": []}'), "no choices"),
    (Reply(status=401, raw=b'{"error": "bad key"}'), "HTTP 401"),
])
def test_an_unusable_reply_falls_back_to_the_rule_and_is_counted(reply, reason, caplog, monkeypatch):
    """A mixed batch: the multiple-choice row is never sent; the caption rows keep their rule score, flagged."""
    monkeypatch.setattr(correctness, "_failures_seen", 0)  # the first failures of a process are logged one by one
    with JudgeServer([reply]) as server:
        scored = score_correctness([CAPTION, "<answer>B</answer>", CAPTION], [SOLUTION, "<answer>B</answer>", SOLUTION],
                                   ["caption", "multiple choice", "caption"], judge_config(server))
    assert scored.scores.tolist() == [pytest.approx(RULE_SCORE), 1.0, pytest.approx(RULE_SCORE)]
    np.testing.assert_array_equal(scored.judge_fallbacks, [1.0, np.nan, 1.0])
    assert scored.num_fallbacks == 2 and len(server.requests) == 2  # a 4xx is not retried
    assert reason in caplog.text and "scored by the rule instead" in caplog.text


def test_a_timeout_is_retried_then_falls_back_to_the_rule():
    with JudgeServer([Reply("[1, 2, 3]", delay_s=1.0)]) as server:
        cfg = judge_config(server, timeout_s=0.2, retries=1)
        verdict = CaptionJudge(cfg.caption_judge).judge("A man opens the fridge.", EVENTS)
        scored = score_correctness([CAPTION], [SOLUTION], ["caption"], cfg)
    assert verdict.recall is None and verdict.failure.startswith("timeout after 2 attempt(s)")
    assert scored.scores.tolist() == [pytest.approx(RULE_SCORE)] and scored.num_fallbacks == 1
    assert len(server.requests) == 4  # 2 captions x (1 try + 1 retry)


def test_a_server_error_is_retried_and_the_retry_counts():
    with JudgeServer([Reply(status=503, raw=b"{}"), Reply("[1, 2, 3]")]) as server:
        scored = score_correctness([CAPTION], [SOLUTION], ["caption"], judge_config(server, retries=1))
    assert scored.scores.tolist() == [1.0] and scored.num_fallbacks == 0 and len(server.requests) == 2


def test_an_endpoint_that_is_not_there_falls_back():
    with JudgeServer([Reply("[]")]) as server:
        cfg = judge_config(server)
    # The server is closed: the port refuses the connection.
    scored = score_correctness([CAPTION], [SOLUTION], ["caption"], cfg)
    assert scored.scores.tolist() == [pytest.approx(RULE_SCORE)] and scored.num_fallbacks == 1


def test_what_is_not_sent_to_the_judge():
    """No <answer> (0), a caption without tokens (0), other problem types: scored without a request."""
    with JudgeServer([Reply("[1]")]) as server:
        scored = score_correctness(["A man opens the fridge.", "<answer>...</answer>", "<answer>B</answer>"],
                                   [SOLUTION, SOLUTION, "<answer>B</answer>"], ["caption", "caption", "multiple choice"],
                                   judge_config(server))
    assert scored.scores.tolist() == [0.0, 0.0, 1.0] and np.isnan(scored.judge_fallbacks).all()
    assert server.requests == []


def test_the_rule_scorer_sends_nothing_and_flags_nothing():
    scored = score_correctness([CAPTION], [SOLUTION], ["caption"], RewardConfig())
    assert scored.scores.tolist() == [pytest.approx(RULE_SCORE)] and scored.judge_fallbacks is None


def test_concurrent_requests_keep_their_order():
    with JudgeServer([Reply("[1]")]) as server:
        captions = [f"<answer>{'a man opens the fridge ' * (i % 2)}x</answer>" for i in range(6)]
        scored = score_correctness(captions, [SOLUTION] * 6, ["caption"] * 6, judge_config(server, max_concurrency=3))
    assert scored.scores.tolist() == [pytest.approx(1 / 3)] * 6 and len(server.requests) == 6


JUDGE = ["reward.caption_scorer=judge", "reward.caption_judge.base_url=http://127.0.0.1:9/v1",
         "reward.caption_judge.model=m"]


@pytest.mark.parametrize("overrides,key", [
    (["reward.caption_scorer=llm"], "reward.caption_scorer"),
    (["reward.caption_scorer=judge"], "reward.caption_judge.base_url"),
    (JUDGE[:2], "reward.caption_judge.model"),
    ([*JUDGE, "reward.caption_judge.api_key_env=ROVA_TEST_JUDGE_KEY"], "reward.caption_judge.api_key_env"),
    (["reward.caption_judge.api_key_env=sk-abc123"], "reward.caption_judge.api_key_env"),
    (["reward.caption_judge.base_url=localhost:8000"], "reward.caption_judge.base_url"),
    (["reward.caption_judge.timeout_s=0"], "reward.caption_judge.timeout_s"),
    (["reward.caption_judge.retries=-1"], "reward.caption_judge.retries"),
    (["reward.caption_judge.max_concurrency=0"], "reward.caption_judge.max_concurrency"),
    (["reward.caption_threshold=0"], "reward.caption_threshold"),
    (["reward.caption_threshold=1.5"], "reward.caption_threshold"),
])
def test_judge_settings_are_checked_at_compose_time_naming_the_key(overrides, key, monkeypatch):
    monkeypatch.delenv("ROVA_TEST_JUDGE_KEY", raising=False)
    with pytest.raises(ConfigError) as info:
        load(overrides)
    assert info.value.key == key


def test_a_judge_with_its_key_in_the_environment_composes(monkeypatch):
    judge = JUDGE
    monkeypatch.setenv("ROVA_TEST_JUDGE_KEY", "k")
    cfg = load_typed([*judge, "reward.caption_judge.api_key_env=ROVA_TEST_JUDGE_KEY"]).reward
    assert cfg.caption_scorer == "judge" and cfg.caption_judge.model == "m"


def test_the_judge_settings_survive_the_trainer_args_round_trip():
    """VideoGRPOConfig.to_dict turns reward.* into a dict; RewardConfig rebuilds caption_judge from it."""
    import dataclasses

    cfg = RewardConfig(caption_judge=CaptionJudgeConfig(base_url="http://127.0.0.1:9/v1", model="m", timeout_s=5.0))
    again = RewardConfig(**dataclasses.asdict(cfg))
    assert again == cfg and isinstance(again.caption_judge, CaptionJudgeConfig)
