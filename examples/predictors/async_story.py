"""An async generator predictor: runs on the event loop, so it must await, not block.

    [profiles.async-story]
    api = "local"
    target = "examples/predictors/async_story.py:generate"

Use this shape when the answer comes from async code (an async HTTP client, another
async library).  Stopping the answer cancels the pending ``await`` and runs ``finally``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

DELAY = 0.01


async def generate(messages: list[dict[str, str]]) -> AsyncIterator[str]:
    """Count the turns of the conversation, one short piece at a time."""
    turns = sum(1 for message in messages if message["role"] == "user")
    for piece in ("This", " is", " turn", f" {turns}", "."):
        await asyncio.sleep(DELAY)
        yield piece
