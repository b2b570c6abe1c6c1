"""What ``tide ask --json`` and ``--stats`` write: one JSON object per event, and the
stats line.  Imported only when asked for (the plain one-shot path never needs it)."""

from __future__ import annotations

import json
from typing import Any

from tokentide.backends.events import Finish, ReasoningDelta, Retrying, TextDelta, ToolCallRequested
from tokentide.generation import Generation

__all__ = ["event_json", "format_stats"]


def format_stats(gen: Generation) -> str:
    stats = gen.stats
    parts = []
    if stats.ttft is not None:
        parts.append(f"first token {stats.ttft * 1000:.0f} ms")
    # tokens where they are tokens, else chunks; no count where nobody counted
    parts.extend(label for label in (stats.count_label(), stats.rate_label()) if label)
    if (total := stats.total) is not None:
        parts.append(f"total {total:.3f} s")
    if stats.attempts > 1:
        parts.append(f"{stats.attempts} attempts")
    return " · ".join(parts)


def event_json(event: object) -> str:
    if isinstance(event, TextDelta):
        obj: dict[str, Any] = {"type": "delta", "text": event.text}
        for key in ("token_id", "logprob", "node_id"):
            if (value := getattr(event, key)) is not None:
                obj[key] = value
        if event.special:
            obj["special"] = True
    elif isinstance(event, ReasoningDelta):
        obj = {"type": "reasoning", "text": event.text}
    elif isinstance(event, ToolCallRequested):
        obj = {"type": "tool_call", "name": event.name, "arguments": event.arguments}
        obj["id"] = event.id
    elif isinstance(event, Finish):
        usage = event.usage
        obj = {
            "type": "finish",
            "reason": event.reason,
            "usage": None
            if usage is None
            else {
                "prompt_tokens": usage.prompt_tokens,
                "completion_tokens": usage.completion_tokens,
            },
        }
        if event.seed is not None:
            obj["seed"] = event.seed
    elif isinstance(event, Retrying):
        obj = {
            "type": "retrying",
            "attempt": event.attempt,
            "delay": event.delay,
            "reason": event.reason,
        }
    else:  # pragma: no cover - every event type is handled above
        obj = {"type": "unknown"}
    return json.dumps(obj, ensure_ascii=True) + "\n"
