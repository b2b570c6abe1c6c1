"""A generator predictor: yields the answer word by word, like a model streaming tokens.

    [profiles.story]
    api = "local"
    target = "examples/predictors/story.py:generate"
    yields = "delta"            # each piece is appended to the answer (the default)

A sync generator runs in a worker thread, so ``time.sleep`` (or a blocking model call)
never freezes the terminal.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

STORY = "Once upon a time a small robot learned to stream its thoughts, one word at a time."
DELAY = 0.01
"""Seconds between words."""


def generate(prompt: str, max_tokens: int | None = None) -> Iterator[str]:
    """Yield the story one word (with its leading space) at a time."""
    words = STORY.split(" ")
    if max_tokens is not None:
        words = words[:max_tokens]
    for index, word in enumerate(words):
        time.sleep(DELAY)
        yield word if index == 0 else " " + word
