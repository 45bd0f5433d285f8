"""Caption recall (VideoChat-R1), the judge: an LLM says which ground-truth events a caption covers.

reward.caption_scorer=judge. One chat-completions request per caption to any OpenAI-compatible endpoint
(`reward.caption_judge.*`, rova.config.reward.CaptionJudgeConfig): the caption and the numbered events go in,
the reply is the JSON list of the covered events' numbers; recall = covered / events. Only the standard library
(urllib) talks to it. Requests run `max_concurrency` at a time; a timeout, a connection error, HTTP 429 or 5xx is
retried. A caption the judge gives no usable verdict on (the retries spent, another HTTP error, a reply without a
list of valid event numbers) comes back as a `JudgeVerdict` with its failure: the caller
(rova.rewards.correctness) scores it by the rule and counts it. Nothing here falls back silently.

The paper (arXiv 2504.06958) releases no judge prompt or code; `JUDGE_PROMPT` is rova's.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any


JUDGE_SYSTEM = "You check video captions against lists of events. You answer with JSON only."
JUDGE_PROMPT = (
    "A caption was written for a video. Below it are the numbered events that happen in the video.\n"
    "Which events does the caption describe? An event counts when the caption states it, in any wording; an event "
    "the caption leaves out or contradicts does not.\n"
    "Reply with only a JSON list of the numbers of the described events, e.g. [1, 3], or [] if none.\n\n"
    "Caption:\n{caption}\n\nEvents:\n{events}"
)
_FENCE = re.compile(r"^```[A-Za-z]*\s*|\s*```$")
_FLAT_LIST = re.compile(r"\[[^\[\]]*\]")


class JudgeFailure(Exception):
    """The judge gave no usable verdict on one caption; the message says why (it is counted and logged)."""


@dataclass(frozen=True)
class JudgeVerdict:
    """The judge on one caption: `covered` (0-based event indices) and `recall`, or `failure` (why there is none)."""

    covered: frozenset[int] | None
    recall: float | None
    failure: str | None = None


def judge_messages(caption: str, events: Sequence[str]) -> list[dict[str, str]]:
    numbered = "\n".join(f"{i}. {event}" for i, event in enumerate(events, start=1))
    return [
        {"role": "system", "content": JUDGE_SYSTEM},
        {"role": "user", "content": JUDGE_PROMPT.format(caption=caption, events=numbered)},
    ]


def reply_content(reply: Any) -> str:
    """choices[0].message.content of a chat-completions reply; JudgeFailure when the reply has none."""
    try:
        content = reply["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise JudgeFailure("the reply has no choices[0].message.content") from None
    if not isinstance(content, str):
        raise JudgeFailure("the reply's message content is not text")
    return content


def parse_covered(content: str, num_events: int) -> frozenset[int]:
    """The 0-based indices of the covered events in a judge's reply text.

    The reply should be a JSON list of 1-based event numbers ("[1, 3]"); also accepted: a code fence around it,
    {"covered": [...]}, and text before or after the list (the LAST flat [...] that parses is the answer, so a
    judge that reasons first works). Numbers may be JSON numbers or digit strings; repeats count once. Anything
    else (no list, a number out of 1..num_events, a non-number) is a JudgeFailure: a reply that misreads the
    question is not scored.
    """
    text = _FENCE.sub("", content.strip())
    candidates = [text] + [match.group(0) for match in reversed(list(_FLAT_LIST.finditer(text)))]
    for candidate in candidates:
        try:
            value = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(value, dict):
            value = value.get("covered")
        if isinstance(value, list):
            return frozenset(_event_index(item, num_events) for item in value)
    raise JudgeFailure(f"no JSON list of event numbers in the reply {content[:80]!r}")


def _event_index(item: Any, num_events: int) -> int:
    number = None
    if isinstance(item, int) and not isinstance(item, bool):
        number = item
    elif isinstance(item, float) and item.is_integer():
        number = int(item)
    elif isinstance(item, str) and item.strip().isdigit():
        number = int(item.strip())
    if number is None or not 1 <= number <= num_events:
        raise JudgeFailure(f"{item!r} is not an event number in 1..{num_events}")
    return number - 1


class CaptionJudge:
    """The judge of reward.caption_judge.* (a rova.config.reward.CaptionJudgeConfig)."""

    def __init__(self, settings: Any, environ: Mapping[str, str] | None = None):
        environ = os.environ if environ is None else environ
        settings.check_ready(environ)
        self.url = str(settings.base_url).rstrip("/") + "/chat/completions"
        self.model = str(settings.model)
        self.timeout_s = float(settings.timeout_s)
        self.retries = int(settings.retries)
        self.retry_backoff_s = float(settings.retry_backoff_s)
        self.max_concurrency = int(settings.max_concurrency)
        self.max_tokens = int(settings.max_tokens)
        self._headers = {"Content-Type": "application/json"}
        if settings.api_key_env is not None:  # check_ready: it is set
            self._headers["Authorization"] = f"Bearer {environ[settings.api_key_env]}"

    def request_body(self, caption: str, events: Sequence[str]) -> dict[str, Any]:
        return {"model": self.model, "messages": judge_messages(caption, events), "temperature": 0.0,
                "max_tokens": self.max_tokens}

    def _post(self, body: dict[str, Any]) -> Any:
        """The endpoint's JSON reply; transport failures retried (module docstring), then a JudgeFailure."""
        data = json.dumps(body).encode("utf-8")
        problem = "no attempt"
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.retry_backoff_s * 2 ** (attempt - 1))
            request = urllib.request.Request(self.url, data=data, headers=self._headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                    raw = response.read()
            except urllib.error.HTTPError as error:
                problem = f"HTTP {error.code}"
                if error.code == 429 or error.code >= 500:
                    continue
                raise JudgeFailure(f"{problem} from {self.url}") from None
            except (TimeoutError, urllib.error.URLError, OSError, http.client.HTTPException) as error:
                reason = getattr(error, "reason", error)
                problem = "timeout" if isinstance(reason, TimeoutError) else f"{type(reason).__name__}: {reason}"
                continue
            try:
                return json.loads(raw)
            except ValueError:
                raise JudgeFailure(f"the reply from {self.url} is not JSON") from None
        raise JudgeFailure(f"{problem} after {self.retries + 1} attempt(s) at {self.url}")

    def judge(self, caption: str, events: Sequence[str]) -> JudgeVerdict:
        """The verdict on one caption; never raises for what the endpoint does (failures are in the verdict)."""
        try:
            covered = parse_covered(reply_content(self._post(self.request_body(caption, events))), len(events))
        except JudgeFailure as failure:
            return JudgeVerdict(None, None, str(failure))
        return JudgeVerdict(covered, len(covered) / len(events))

    def judge_many(self, items: Sequence[tuple[str, Sequence[str]]]) -> list[JudgeVerdict]:
        """The verdicts on (caption, events) items, in order, max_concurrency requests at a time."""
        if not items:
            return []
        with ThreadPoolExecutor(max_workers=min(self.max_concurrency, len(items))) as pool:
            return list(pool.map(lambda item: self.judge(*item), items))
