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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeAlias

from tokentide.errors import HistoryBusy, HistoryError
from tokentide.history import database
from tokentide.history.database import BUSY_TIMEOUT_MS, Database

__all__ = ["PendingWrite", "PendingWrites", "QueuedWrites", "Resolve", "Run"]


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


Resolve: TypeAlias = Callable[[int], int]
Run: TypeAlias = Callable[[sqlite3.Connection, Resolve], int | None]


class QueuedWrites(Database):
    """A :class:`Database` whose conversation writes queue (in order, in memory) while
    another process holds the lock; see the module docstring."""

    def __init__(
        self, connection: sqlite3.Connection, path: Path, *, busy_timeout_ms: int = BUSY_TIMEOUT_MS
    ) -> None:
        super().__init__(connection, path, busy_timeout_ms=busy_timeout_ms)
        self._pending = PendingWrites()
        self.rescued: Path | None = None
        """Where :meth:`close` wrote writes that never got the lock (None: none)."""

    def close(self) -> None:
        """Close the database.  Idempotent.  Writes still waiting for another process's
        lock get the full :data:`BUSY_TIMEOUT_MS` to land; what still cannot is written
        to a rescue file beside the database (:attr:`rescued` names it)."""
        with self._lock:
            if self._db is not None and self._pending:
                self._set_busy_timeout(database.BUSY_TIMEOUT_MS)
                if self.flush_pending():
                    self.rescued = self._pending.rescue(
                        self.path, datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
                    )
            super().close()

    @contextmanager
    def _write(self, what: str) -> Iterator[sqlite3.Connection]:
        """A write that does not queue itself (rename, delete …) waits until the queued
        ones have landed, and says so rather than jumping the queue."""
        if self._pending and self.flush_pending():
            raise self._busy(what)
        with super()._write(what) as db:
            yield db

    @property
    def pending(self) -> int:
        """How many writes wait for another process's lock (0: everything is saved)."""
        return len(self._pending)

    def flush_pending(self) -> int:
        """Try the waiting writes again, in order; return how many still wait.  A write
        that fails for another reason than the lock (its conversation was deleted) is
        dropped and its error raised, after the rest of the queue is tried."""
        failure: HistoryError | None = None
        with self._lock:
            while self._pending.queue:
                write = self._pending.queue[0]
                try:
                    self._pending.replay(self._replay_one)
                except HistoryBusy:
                    break
                except HistoryError as error:
                    if self._pending.queue and self._pending.queue[0] is write:
                        self._pending.queue.pop(0)
                    failure = failure or error
        if failure is not None:
            raise failure
        return len(self._pending)

    def _replay_one(self, write: PendingWrite) -> int | None:
        with super()._write(write.what) as db:
            return write.run(db, self._pending.resolve)

    def _save(self, what: str, run: Run, record: dict[str, Any]) -> None:
        self._save_or_queue(what, run, record, row=False)

    def _save_row(self, what: str, run: Run, record: dict[str, Any]) -> int:
        result = self._save_or_queue(what, run, record, row=True)
        assert result is not None
        return result

    def _save_or_queue(
        self, what: str, run: Run, record: dict[str, Any], *, row: bool
    ) -> int | None:
        """Run the write now, or when another process holds the lock (or earlier writes
        still wait), queue it in order and return a provisional id for a new row."""
        with self._lock:
            if self._pending:
                self.flush_pending()
            if not self._pending:
                try:
                    with super()._write(what) as db:
                        return run(db, self._pending.resolve)
                except HistoryBusy:
                    pass
            provisional = self._pending.provisional_id() if row else None
            self._pending.add(PendingWrite(what, run, provisional, record))
            return provisional

    def _resolve(self, message_id: int) -> int:
        try:
            return self._pending.resolve(message_id)
        except LookupError:
            raise self._busy("change a message that is still waiting to be saved") from None

    def _busy(self, what: str) -> HistoryBusy:
        return HistoryBusy(
            f"Cannot {what} yet: another process holds the history database {self.path}; "
            f"{self.pending} change(s) wait in memory and are retried.",
            hint="Another tide may be busy or stuck; nothing was lost.",
        )
