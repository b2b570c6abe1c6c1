"""A functions file as a user would write one (``tide --functions sample_functions.py``),
loaded by tests/tools/test_functions.py."""

from __future__ import annotations

import asyncio
import enum
import threading
from pathlib import Path
from typing import Literal

RELEASE = threading.Event()
"""Set by the test to let :func:`block` return (after its caller gave up on it)."""
STARTED = threading.Semaphore(0)
FINISHED = threading.Semaphore(0)


class Unit(enum.Enum):
    CELSIUS = "C"
    FAHRENHEIT = "F"


def add(a: int, b: int = 0) -> int:
    """Add two integers.

    Longer explanation that is not part of the description.

    Args:
        a: The first number.
        b (int): The second number,
            which may be left out.
    """
    return a + b


def convert(value: float, unit: Unit = Unit.CELSIUS, precision: int | None = None) -> str:
    """Convert a temperature.

    Parameters
    ----------
    value : float
        The temperature.
    unit : Unit
        What to convert to.

    Returns
    -------
    str
    """
    result = value * 9 / 5 + 32 if unit is Unit.FAHRENHEIT else (value - 32) * 5 / 9
    return f"{round(result, precision) if precision is not None else result}{unit.value}"


def choose(
    colour: Literal["red", "green"], tags: list[str], weights: dict[str, float]
) -> dict[str, object]:
    """Pick a colour."""
    return {"colour": colour, "tags": tags, "total": sum(weights.values())}


def explode(message: str) -> str:
    """Always raises."""
    raise ValueError(message)


async def wait(seconds: float) -> str:
    """Async: sleeps (on the event loop)."""
    await asyncio.sleep(seconds)
    return "waited"


def block() -> str:
    """Blocks its thread until the test releases it."""
    STARTED.release()
    RELEASE.wait(30)
    FINISHED.release()
    return "too late"


def leave(code: int) -> None:
    """Calls sys.exit (which must not end the program calling it)."""
    raise SystemExit(code)


def _private() -> None:
    """Not offered."""


from os.path import join  # noqa: E402  # imported, not defined here: not offered

__unused = (Path, join)
