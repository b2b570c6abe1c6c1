"""A Function/Muna-style predictor: each yield is the whole answer so far.

    [profiles.muna-style]
    api = "local"
    target = "examples/predictors/cumulative.py:generate"
    yields = "cumulative"       # tokentide streams only what each result adds

``create`` returns the last result; ``stream`` shows "hello", " from", " Muna".
"""

from __future__ import annotations

import time
from collections.abc import Iterator

DELAY = 0.01


def generate() -> Iterator[str]:
    """Yield ever longer partial results, as a Muna predictor does."""
    answer = ""
    for word in ("hello", " from", " Muna"):
        time.sleep(DELAY)
        answer += word
        yield answer
