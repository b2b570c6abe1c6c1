"""A predictor that prints, to stdout and stderr, at import and while it answers.

Its prints carry terminal escapes (an OSC 0 window title, a screen clear): none of it may
reach tide's stdout or stderr; with ``--debug`` it is in the debug log, sanitised.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Iterator

print("IMPORT-PRINT \x1b]0;pwned-title\x07")


def generate(prompt: str) -> Iterator[str]:
    """Prints around each piece, in every way a predictor might."""
    print("GEN-PRINT-1 \x1b[2J")
    yield "The answer"
    print("GEN-STDERR", file=sys.stderr)
    sys.stdout.write("GEN-WRITE no newline")
    sys.stdout.flush()
    sys.stdout.buffer.write(b"GEN-BUFFER\n")
    yield " is 42."
    print("GEN-PRINT-LAST")


def eager(prompt: str) -> str:
    print("EAGER-PRINT")
    return "eager answer"


async def agenerate(prompt: str) -> AsyncIterator[str]:
    print("ASYNC-PRINT-1")
    yield "async"
    await asyncio.sleep(0)
    print("ASYNC-PRINT-2", file=sys.stderr)
    yield " answer"
