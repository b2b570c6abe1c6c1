"""Predictors that try to end the program part-way: ``sys.exit`` and ``KeyboardInterrupt``.

Each answer must end with an error of that answer (the text before it kept), never by
ending tide.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator


def exit_midway() -> Iterator[str]:
    yield "partial "
    yield "answer"
    sys.exit(3)


def interrupt_midway() -> Iterator[str]:
    yield "partial "
    raise KeyboardInterrupt


def exit_eager() -> str:
    sys.exit()


async def aexit_midway() -> AsyncIterator[str]:
    yield "partial"
    sys.exit("bye")


async def ainterrupt() -> str:
    raise KeyboardInterrupt


def exit_on_close() -> Iterator[str]:
    try:
        yield "first"
        yield "second"
    finally:
        sys.exit(9)
