"""What a "Tools" view shows: every source of tools, its state and its tools, as frozen
snapshots, plus the one change signal a view awaits.

A leaf of :mod:`tokentide.tools`: no SDK, no asyncio tasks.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from tokentide.backends.tool_spec import ToolSpec

__all__ = ["Changes", "SourceKind", "SourceState", "SourceStatus", "ToolSource"]

SourceState = Literal["starting", "ready", "restarting", "failed", "stopped"]
"""``starting``: first connection under way; ``ready``: its tools are offered;
``restarting``: it stopped (crashed, or its connection broke) and will be started again
after a backoff; ``failed``: it could not be started, or crashed too often (``message``
says why); ``stopped``: closed by tide."""

SourceKind = Literal["mcp-stdio", "mcp-http", "functions"]


@dataclass(frozen=True, slots=True)
class SourceStatus:
    """One source as it is now."""

    name: str
    """The server's name in its file, or the functions file's stem."""
    kind: SourceKind
    state: SourceState
    where: str
    """The command line, URL or file path."""
    tools: tuple[ToolSpec, ...] = ()
    """Its tools under their own names (the toolbox may offer them qualified)."""
    message: str = ""
    """Why it failed or is restarting (sanitised); empty otherwise."""
    trust: bool = False
    restarts: int = 0


@dataclass(frozen=True, slots=True)
class ToolSource:
    """Where one offered tool comes from, for the approval dialog and the rules."""

    tool: str
    """The name the model calls it by (qualified if it clashed)."""
    original: str
    """Its name in its source."""
    source: str
    """The server's name, or the functions file's stem."""
    kind: SourceKind
    where: str
    trust: bool = False


class Changes:
    """A change signal: :meth:`notify` after any state change; a view either registers a
    callback (:meth:`subscribe`) or awaits :meth:`wait` in a loop.

    ``wait`` returns after the next change from the moment it is called, so a view that
    takes a snapshot and then waits misses nothing: take the snapshot *after* ``wait``.
    """

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self._callbacks: list[Callable[[], None]] = []
        self.version = 0
        """Counts changes; a poller compares it."""

    def subscribe(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback()`` (on the event loop, synchronously) after every change;
        returns the function that unsubscribes."""
        self._callbacks.append(callback)

        def unsubscribe() -> None:
            if callback in self._callbacks:
                self._callbacks.remove(callback)

        return unsubscribe

    def notify(self) -> None:
        self.version += 1
        event, self._event = self._event, asyncio.Event()
        event.set()
        for callback in list(self._callbacks):
            try:
                callback()
            except Exception:  # a view's bug must not stop a server's supervisor
                logging.getLogger("tokentide.tools").exception("a tools change callback raised")

    async def wait(self) -> None:
        """Until the next change."""
        await self._event.wait()
