"""A stdio MCP server's stderr, sent to the debug log instead of the terminal.

Servers write their start-up banners, warnings and tracebacks to stderr; let through,
they would paint over the chat screen.  The SDK takes a file for the child's stderr, so
each start gets an OS pipe: the child writes its end, a daemon thread reads the other
and logs every line (sanitised by the debug log's filter) on ``tokentide.tools``.  The
last lines are kept: when a server dies they say why ("ModuleNotFoundError: ..."), and
the Tools view shows it.

A thread rather than an asyncio pipe reader: it needs nothing of the event loop, so it
keeps draining while the loop is busy or closing, and a server never blocks on a full
stderr pipe.
"""

from __future__ import annotations

import collections
import logging
import os
import threading
from typing import TextIO, cast

from tokentide.sanitize import sanitize

__all__ = ["StderrPipe"]

_KEEP = 20


class StderrPipe:
    """One server start's stderr: :attr:`writer` goes to the child, :meth:`spawned` is
    called once it runs (the parent's copy of the write end closes, so the reader sees
    the end when the child exits)."""

    def __init__(self, server: str, logger: logging.Logger) -> None:
        read_fd, write_fd = os.pipe()
        self.writer = cast(TextIO, os.fdopen(write_fd, "w", encoding="utf-8"))
        self._reader = os.fdopen(read_fd, "rb")
        self._server = server
        self._logger = logger
        self._lines: collections.deque[str] = collections.deque(maxlen=_KEEP)
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._thread = threading.Thread(
            target=self._read, name=f"tide-mcp-stderr-{server}", daemon=True
        )
        self._thread.start()

    def _read(self) -> None:
        try:
            with self._reader:
                for raw in self._reader:
                    line = sanitize(raw.decode("utf-8", "replace").rstrip("\r\n"))
                    if not line.strip():
                        continue
                    with self._lock:
                        self._lines.append(line)
                    self._logger.debug("MCP server %r stderr: %s", self._server, line)
        except (OSError, ValueError):  # closed under us at shutdown
            pass
        finally:
            self._done.set()

    def spawned(self) -> None:
        """The child holds its own copy now: close ours (idempotent)."""
        if not self.writer.closed:
            self.writer.close()

    def last(self, count: int = 3) -> list[str]:
        """The last ``count`` non-empty lines the server wrote."""
        with self._lock:
            return list(self._lines)[-count:]

    def wait_closed(self, timeout: float) -> bool:
        """Whether the child's stderr ended within ``timeout`` seconds (a blocking wait:
        call it from a worker thread)."""
        return self._done.wait(timeout)
