"""A predictor that yields OpenAI chat-completion chunks instead of strings.

    [profiles.chunks]
    api = "local"
    target = "examples/predictors/openai_chunks.py:generate"

Handy for wrapping code that already speaks the OpenAI shape (Muna's OpenAI shim, a
proxy).  ``{"content": ...}`` and ``{"text": ...}`` dicts work too; a ``finish_reason``
in the last chunk becomes the answer's finish reason.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def generate(prompt: str) -> Iterator[dict[str, Any]]:
    """Echo the prompt back in three OpenAI-shaped chunks."""
    yield {"choices": [{"index": 0, "delta": {"role": "assistant"}, "finish_reason": None}]}
    for text in ("Echo:", " ", prompt):
        yield {"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]}
    yield {"choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]}
