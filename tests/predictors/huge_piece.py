"""A predictor whose second piece is one 10 MB string (built at import, so a test can
measure what tokentide itself allocates)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

HUGE = "x" * (10 << 20)
closed = threading.Event()


def generate() -> Iterator[str]:
    try:
        yield "hello "
        yield HUGE
        yield "never shown"
    finally:
        closed.set()
