"""Where ``tide ask`` writes: stdout as UTF-8 bytes that survive a closed pipe, and a
"waiting" line on stderr until the answer starts (only when both are terminals)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from typing import IO

from tokentide.generation import Generation

__all__ = ["Spinner", "Writer", "is_terminal"]


class Writer:
    """Writes UTF-8 to a binary stream; remembers whether the last text ended a line."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream = stream
        self.at_line_start = True
        self.broken = False
        self.before_first: Callable[[], None] | None = None
        """Called once, before the first write (the spinner clears its line)."""
        self.wrote = False
        self.paragraph = False
        """The next text starts a paragraph (the answer after a round of tools)."""

    def write(self, text: str) -> None:
        if not text or self.broken:
            return
        if self.before_first is not None:
            self.before_first()
            self.before_first = None
        if self.paragraph:
            self.paragraph = False
            if self.wrote:
                text = ("\n" if self.at_line_start else "\n\n") + text
        self.wrote = True
        try:
            self.stream.write(text.encode("utf-8", "replace"))
            self.stream.flush()
        except BrokenPipeError:
            self.broken = True
            return
        self.at_line_start = text.endswith("\n")


class Spinner:
    """A "waiting" line on stderr until the answer starts, shown only when stdout and
    stderr are both a terminal (never on a pipe), and only after 100 ms."""

    FRAMES = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"

    def __init__(self, stream: IO[str], gen: Generation, server: str) -> None:
        self.stream = stream
        self.gen = gen
        self.server = server
        self.task: asyncio.Task[None] | None = None
        self.shown = False

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._spin())

    async def _spin(self) -> None:
        frame = 0
        while True:
            await asyncio.sleep(0.1)
            elapsed = self.gen.stats.elapsed
            self.stream.write(
                f"\r{self.FRAMES[frame % len(self.FRAMES)]} waiting for {self.server} · {elapsed:.1f} s"
            )
            self.stream.flush()
            self.shown = True
            frame += 1

    def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            self.task = None
        if self.shown:
            self.stream.write("\r\x1b[K")  # our own sequence: erase the spinner's line
            self.stream.flush()
            self.shown = False


def is_terminal(stream: object) -> bool:
    try:
        return os.isatty(stream.fileno())  # type: ignore[attr-defined]
    except (AttributeError, OSError, ValueError):
        return False
