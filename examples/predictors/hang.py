"""A predictor that stalls between two yields: for trying the stop key.

    [profiles.hang]
    api = "local"
    target = "examples/predictors/hang.py:generate"

After its first piece it blocks for up to ``STALL_SECONDS`` in a call that nothing can
interrupt (as a slow model step would).  Press the stop key meanwhile: tokentide stops
waiting at once, and the generator is closed (its ``finally`` runs) as soon as it yields
again.  The three events let tests, and the curious, watch that happen.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

STALL_SECONDS = 30.0

stalled = threading.Event()
"""Set while the generator is stuck between its two yields."""
resume = threading.Event()
"""Set it to end the stall early."""
closed = threading.Event()
"""Set when the generator's ``finally`` has run."""


def generate() -> Iterator[str]:
    """Yield a piece, stall (bounded), yield another."""
    try:
        yield "Thinking"
        stalled.set()
        resume.wait(STALL_SECONDS)
        yield " ... done."
    finally:
        closed.set()
