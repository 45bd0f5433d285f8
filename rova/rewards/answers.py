"""Answer extraction and completion normalisation shared by every reward.

Everything here is linear-time string scanning (str.find / str.rfind), never a backtracking regex, so
a 1 MB completion costs milliseconds.
"""

from __future__ import annotations

from typing import Any


def extract_answer(text: str) -> str | None:
    """Content of the LAST complete `<answer>...</answer>` span, stripped; None when there is none.

    The span opens at the last `<answer>` that is followed by a `</answer>` and closes at the first
    `</answer>` after it, so the content never contains a tag. For well-formed text this equals
    `re.findall(r"<answer>(.*?)</answer>", text, re.DOTALL)[-1].strip()`; with nested or stray tags it
    picks the innermost span (`<answer><answer>B</answer>` -> "B").
    """
    return extract_tag(text, "answer")


def extract_tag(text: str, tag: str) -> str | None:
    """Content of the LAST complete `<tag>...</tag>` span, stripped; None when there is none (see extract_answer)."""
    if not isinstance(text, str):
        return None
    opening, closing = f"<{tag}>", f"</{tag}>"
    close = text.rfind(closing)
    if close < 0:
        return None
    start = text.rfind(opening, 0, close)
    if start < 0:
        return None
    content_start = start + len(opening)
    # The first closing tag after that opening (it exists: `close` is one), not necessarily `close`.
    return text[content_start : text.find(closing, content_start)].strip()


def completion_to_text(completion: Any) -> str:
    """The text of one completion as TRL hands it to a reward function.

    TRL passes a plain string for text prompts, or a conversational list of messages
    (`[{"role": "assistant", "content": ...}]`) where content is a string or a list of blocks
    (`[{"type": "text", "text": ...}]`). Anything else (None, images, unknown shapes) yields "" so
    the reward is 0 rather than an exception in the middle of a training step.
    """
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        return _content_to_text(completion.get("content"))
    if isinstance(completion, (list, tuple)):
        parts = []
        for message in completion:
            if isinstance(message, str):
                parts.append(message)
            elif isinstance(message, dict) and message.get("role", "assistant") == "assistant":
                parts.append(_content_to_text(message.get("content")))
        return "".join(parts)
    return ""


def _content_to_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, (list, tuple)):
        parts = []
        for block in content:
            if isinstance(block, str):
                parts.append(block)
            elif isinstance(block, dict) and block.get("type", "text") == "text":
                text = block.get("text")
                if isinstance(text, str):
                    parts.append(text)
        return "".join(parts)
    return ""
