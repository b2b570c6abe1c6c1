"""A scripted backend for pure-UI tests (no network).  Stop/disconnect behaviour is
tested against the real loopback server (tests/servers/llm_server.py) instead."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Callable, Sequence
from typing import Any

from tokentide.backends.base import GenerationRequest, Reply, collect
from tokentide.backends.events import Event, Finish, TextDelta
from tokentide.errors import BackendError

__all__ = ["ScriptedBackend", "answer", "until"]


async def until(pilot: Any, condition: Callable[[], object], timeout: float = 30.0) -> None:
    """Let the app run until ``condition()`` holds (checked after each refresh).

    Tests wait for what they need to see, never for a fixed time: a loaded CI machine
    paints later, not differently.  The timeout only turns a hang into a failure."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        await pilot.pause(0.01)


def answer(text: str, *, reason: str = "stop") -> list[Event | BackendError]:
    """``text`` as one event per word, then a Finish."""
    words = text.split(" ")
    events: list[Event | BackendError] = [
        TextDelta(word if i == 0 else " " + word) for i, word in enumerate(words)
    ]
    events.append(Finish(reason))
    return events


class ScriptedBackend:
    """Plays back scripts of events, one script per request (the last one repeats).

    Args:
        scripts: One sequence per request; a ``BackendError`` in it is raised.
        pause_before: In every script, wait for ``resume`` before this index.
    """

    name = "scripted http://scripted.test/v1"

    def __init__(
        self,
        *scripts: Sequence[Event | BackendError],
        pause_before: int | None = None,
    ) -> None:
        self.scripts = list(scripts) or [answer("Hello there.")]
        self.pause_before = pause_before
        self.requests: list[GenerationRequest] = []
        self.paused = asyncio.Event()
        self.resume = asyncio.Event()
        self.stream_closed = asyncio.Event()
        self.closed = False

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[Event, None]:
        index = len(self.requests)
        self.requests.append(request)
        script = self.scripts[min(index, len(self.scripts) - 1)]
        self.stream_closed.clear()
        try:
            for position, item in enumerate(script):
                if position == self.pause_before:
                    self.paused.set()
                    await self.resume.wait()
                if isinstance(item, BackendError):
                    raise item
                yield item
                await asyncio.sleep(0)
        finally:
            self.stream_closed.set()

    async def create(self, request: GenerationRequest) -> Reply:
        return await collect(self.stream(request))

    async def aclose(self) -> None:
        self.closed = True
