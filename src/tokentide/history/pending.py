"""Writes that wait: what the store was given while another process held the lock.

SQLite lets one process write at a time.  When another tide (or a backup tool) holds the
history's write lock, the chat must neither freeze nor drop what the user wrote or
received.  The store gives such a write a short ``busy_timeout`` (a fraction of a
second in the TUI), and when the lock is still held it queues the write here, in order,
and answers at once: a conversation id (made here, as always), or for a new message a
*provisional* id (negative) that later writes may name.  :meth:`PendingWrites.replay`
runs the queue in order as soon as the lock is free, mapping provisional ids to the real
ones, and the caller retries it (the TUI once a second, every new write first).

Nothing is dropped silently: if the store is closed while writes still wait, they are
written to a rescue file beside the database (JSON, one entry per write, with its text)
and the store says exactly which file holds them.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["PendingWrite", "PendingWrites"]


@dataclass(slots=True)
class PendingWrite:
    """One queued write.  ``run(db, resolve)`` performs it inside a write transaction
    the store opened; ``resolve`` maps a provisional id to the real one.  It returns the
    real id of a row it inserted, or None."""

    what: str
    run: Callable[[sqlite3.Connection, Callable[[int], int]], int | None]
    provisional: int | None
    record: dict[str, Any]
    """The write as data, for the rescue file: kind, conversation, role, text…"""


@dataclass(slots=True)
class PendingWrites:
    queue: list[PendingWrite] = field(default_factory=list)
    ids: dict[int, int] = field(default_factory=dict)
    """Provisional id -> the real id, once its insert ran."""
    _next: int = -1

    def __len__(self) -> int:
        return len(self.queue)

    def provisional_id(self) -> int:
        value = self._next
        self._next -= 1
        return value

    def resolve(self, message_id: int) -> int:
        """The real id for ``message_id`` (itself when it is not provisional)."""
        if message_id >= 0:
            return message_id
        try:
            return self.ids[message_id]
        except KeyError:
            raise LookupError(f"message {message_id} is still waiting to be saved") from None

    def add(self, write: PendingWrite) -> None:
        self.queue.append(write)

    def replay(self, transaction: Callable[[PendingWrite], int | None]) -> None:
        """Run the queue in order through ``transaction`` (one write transaction each);
        stops at the first one that raises, leaving it and the rest queued."""
        while self.queue:
            write = self.queue[0]
            real = transaction(write)
            if write.provisional is not None and real is not None:
                self.ids[write.provisional] = real
            self.queue.pop(0)

    def rescue(self, database: Path, stamp: str) -> Path:
        """Write what still waits to a private JSON file beside ``database``; return it."""
        path = database.with_name(f"{database.name}.unsaved-{stamp}.json")
        text = json.dumps([w.record for w in self.queue], ensure_ascii=False, indent=1)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(text + "\n")
        self.queue.clear()
        return path
