"""A predictor that fails part-way: what the user sees when a backend breaks mid-answer.

    [profiles.flaky]
    api = "local"
    target = "examples/predictors/flaky.py:generate"

The text already streamed stays on screen; the error names ``flaky.py:generate`` and
shows ``RuntimeError: the model ran out of ideas``.
"""

from __future__ import annotations

from collections.abc import Iterator


def generate() -> Iterator[str]:
    """Yield two pieces, then raise."""
    yield "I was going to say"
    yield " something clever"
    raise RuntimeError("the model ran out of ideas")
