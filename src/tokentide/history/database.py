"""The history's SQLite file: opening (read-write or read-only), schema upgrades, and
one short transaction per read or write.  :class:`~tokentide.history.store.HistoryStore`
builds the conversation API on top.

* WAL, ``synchronous=NORMAL``, ``busy_timeout`` (10 s unless the caller asks for less)
  and ``BEGIN IMMEDIATE`` for every write, so several tide processes share the file;
* each schema migration is one transaction including the ``user_version`` bump, and an
  older file is copied aside first (``history.sqlite3.v1.bak``); a file from a newer
  tokentide is refused untouched; an unreadable or corrupt file raises
  :class:`~tokentide.errors.HistoryError` with the path and what to do;
* a read-only open (``mode=ro``, else ``immutable=1``) never writes the file or its
  directory.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Final, Self

from tokentide.errors import HistoryBusy, HistoryError
from tokentide.history.schema import LATEST, MIGRATIONS

__all__ = ["BUSY_TIMEOUT_MS", "DB_NAME", "Database"]

DB_NAME: Final = "history.sqlite3"
BUSY_TIMEOUT_MS: Final = 10_000


class Database:
    """One connection to the history file, serialised by a lock."""

    def __init__(
        self, connection: sqlite3.Connection, path: Path, *, busy_timeout_ms: int = BUSY_TIMEOUT_MS
    ) -> None:
        self._db: sqlite3.Connection | None = connection
        self.path = path
        self.busy_timeout_ms = busy_timeout_ms
        self.read_only = False
        """Opened with ``read_only=True``: every write raises :class:`HistoryError`."""
        self._lock = threading.RLock()

    # -- opening -------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        path: Path | str | None = None,
        *,
        read_only: bool = False,
        busy_timeout: float = BUSY_TIMEOUT_MS / 1000,
    ) -> Self:
        """Open (creating if needed) the store at ``path``, default
        ``data_dir()/history.sqlite3``, and bring its schema up to date.

        ``read_only`` opens an existing file without ever writing to it or its directory
        (``history list/show/export``): a read-only data dir, another user's backup or a
        file on a read-only medium can still be read.

        ``busy_timeout`` (seconds) is how long a write waits for another process's lock
        before it is queued (see :mod:`tokentide.history.pending`); the TUI passes a
        fraction of a second so that a busy file never freezes the chat."""
        busy = max(0, round(busy_timeout * 1000))
        if path is None:
            from tokentide.config.paths import data_dir

            path = data_dir() / DB_NAME
        path = Path(path).expanduser()
        if read_only:
            return cls._open_read_only(path, busy)
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            if not path.exists():
                # Private from the first byte; SQLite gives -wal/-shm the same mode.
                fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
                os.close(fd)
        except OSError as error:
            raise HistoryError(
                f"Cannot create the history database {path}: {error.strerror or error}.",
                hint="Check that the directory is writable, or set TIDE_DATA_DIR.",
            ) from None
        _check_header(path)
        try:
            connection = sqlite3.connect(
                path,
                timeout=busy / 1000,
                isolation_level=None,
                check_same_thread=False,
            )
        except sqlite3.Error as error:
            raise _translate(error, path, "open") from None
        store = cls(connection, path, busy_timeout_ms=busy)
        try:
            store._prepare()
        except BaseException:
            connection.close()
            raise
        return store

    @classmethod
    def _open_read_only(cls, path: Path, busy: int) -> Self:
        """``mode=ro`` first (sees another writer's WAL); where SQLite cannot make the
        ``-shm`` index beside a WAL file (a read-only directory), ``immutable=1``, which
        reads the file as it is on disk."""
        _check_header(path)
        uri = path.resolve().as_uri()
        last: sqlite3.Error | None = None
        for flags in ("mode=ro", "mode=ro&immutable=1"):
            connection = sqlite3.connect(
                f"{uri}?{flags}",
                uri=True,
                timeout=busy / 1000,
                isolation_level=None,
                check_same_thread=False,
            )
            store = cls(connection, path, busy_timeout_ms=busy)
            store.read_only = True
            try:
                version = store._version()
            except sqlite3.Error as error:
                connection.close()
                last = error
                continue
            if version != LATEST:
                connection.close()
                raise HistoryError(
                    f"The history database {path} has schema version {version}; this "
                    f"version of tokentide reads version {LATEST}, and cannot upgrade a "
                    "file it may not write.",
                    hint="Run tide once where the file is writable, or upgrade tokentide.",
                )
            return store
        assert last is not None
        raise _translate(last, path, "open")

    def _prepare(self) -> None:
        db = self._conn()
        with self._guard("open"):
            db.execute(f"PRAGMA busy_timeout = {self.busy_timeout_ms}")
            version = self._version()
            if version > LATEST:
                raise HistoryError(
                    f"The history database {self.path} was written by a newer tokentide "
                    f"(schema version {version}; this version understands up to {LATEST}).",
                    hint="Upgrade tokentide, or set TIDE_DATA_DIR to use another history. "
                    "The file was not changed.",
                )
            if version == 0:
                tables = db.execute(
                    "SELECT count(*) FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"
                ).fetchone()[0]
                if tables:
                    raise HistoryError(
                        f"{self.path} is an SQLite database but not a tokentide history.",
                        hint="Move it away or set TIDE_DATA_DIR; it was not changed.",
                    )
            mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":  # pragma: no cover - e.g. a read-only medium
                raise HistoryError(
                    f"Cannot switch the history database {self.path} to WAL mode ({mode}).",
                    hint="Check that the file and its directory are writable.",
                )
            db.execute("PRAGMA synchronous = NORMAL")
            db.execute("PRAGMA foreign_keys = ON")
            if 0 < version < LATEST:
                self._backup(version)
            self._migrate()

    def _version(self) -> int:
        return int(self._conn().execute("PRAGMA user_version").fetchone()[0])

    def _backup(self, version: int) -> None:
        """Copy an older-schema database aside once before upgrading it
        (``history.sqlite3.v1.bak``), written to a temporary name and renamed."""
        target = self.path.with_name(f"{self.path.name}.v{version}.bak")
        if target.exists():
            return
        # A name of its own: two processes upgrading at once each write a whole copy.
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        os.close(fd)
        temp = Path(name)
        try:
            copy = sqlite3.connect(temp, isolation_level=None)
            try:
                self._conn().backup(copy)
            finally:
                copy.close()
            os.replace(temp, target)
        finally:
            with suppress(FileNotFoundError):
                temp.unlink()

    def _migrate(self) -> None:
        db = self._conn()
        while (version := self._version()) < LATEST:
            db.execute("BEGIN IMMEDIATE")
            try:
                if self._version() == version:  # not already done by another process
                    for statement in MIGRATIONS[version]:
                        db.execute(statement)
                    db.execute(f"PRAGMA user_version = {version + 1}")
                db.execute("COMMIT")
            except BaseException:
                with suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
                raise

    def close(self) -> None:
        """Close the database.  Idempotent."""
        with self._lock:
            if self._db is not None:
                db, self._db = self._db, None
                db.close()

    def _set_busy_timeout(self, milliseconds: int) -> None:
        self.busy_timeout_ms = milliseconds
        self._conn().execute(f"PRAGMA busy_timeout = {milliseconds}")

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise HistoryError(f"The history store {self.path} is closed.")
        return self._db

    @contextmanager
    def _guard(self, what: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as error:
            raise _translate(error, self.path, what) from None

    @contextmanager
    def _write(self, what: str) -> Iterator[sqlite3.Connection]:
        """One short write transaction, taking the write lock at the start so that
        concurrent writers queue on ``busy_timeout`` instead of failing."""
        if self.read_only:
            raise HistoryError(
                f"Cannot {what}: the history database {self.path} was opened read-only."
            )
        with self._lock, self._guard(what):
            db = self._conn()
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                with suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    @contextmanager
    def _read(self, what: str) -> Iterator[sqlite3.Connection]:
        with self._lock, self._guard(what):
            db = self._conn()
            db.execute("BEGIN")
            try:
                yield db
            finally:
                with suppress(sqlite3.Error):
                    db.execute("COMMIT")


def _check_header(path: Path) -> None:
    """Refuse a non-empty file that does not start like an SQLite database (SQLite would
    treat a very short one as empty and write over it)."""
    try:
        with open(path, "rb") as file:
            head = file.read(16)
    except OSError:
        return  # sqlite3.connect reports it
    if head and head != b"SQLite format 3\x00":
        raise _translate(sqlite3.DatabaseError("file is not a database"), path, "open")


def _translate(error: sqlite3.Error, path: Path, what: str) -> HistoryError:
    text = str(error)
    lowered = text.lower()
    if "not a database" in lowered or "malformed" in lowered or "corrupt" in lowered:
        return HistoryError(
            f"The history database {path} is damaged or not a database ({text}).",
            hint=f"Move it aside (mv '{path}' '{path}.broken') and tide will start a new "
            "history; the damaged file can often be salvaged with `sqlite3 FILE .recover`.",
        )
    if "locked" in lowered or "busy" in lowered:
        return HistoryBusy(
            f"The history database {path} stayed locked by another process; could not {what}.",
            hint="Another tide may be stuck; close it and try again.",
        )
    if "readonly" in lowered or "unable to open" in lowered or "permission" in lowered:
        return HistoryError(
            f"Cannot {what}: the history database {path} is not writable or cannot be "
            f"opened ({text}).",
            hint="Check the permissions of the file and its directory, or set TIDE_DATA_DIR.",
        )
    if "disk" in lowered and "full" in lowered:
        return HistoryError(
            f"Cannot {what}: the disk holding {path} is full.",
            hint="Free some space; nothing already saved was lost.",
        )
    return HistoryError(f"Cannot {what} in the history database {path}: {text}.")
