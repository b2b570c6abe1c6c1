"""The simplest predictor: an eager function that returns the whole answer at once.

    [profiles.echo]
    api = "local"
    target = "examples/predictors/echo.py:generate"

``stream`` on an eager function yields the whole answer as one piece.  ``agenerate`` is
the same as an ``async def`` (target ``examples/predictors/echo.py:agenerate``).
"""

from __future__ import annotations


def generate(prompt: str, system: str | None = None) -> str:
    """Answer with the prompt, and say which system prompt was in force."""
    if system:
        return f"You said: {prompt} (system: {system})"
    return f"You said: {prompt}"


async def agenerate(prompt: str) -> str:
    """The async flavour: awaited on the event loop instead of run in a thread."""
    return f"You said: {prompt}"
