"""Shared helpers for the history store tests.

``SCHEMA_V1``, ``SCHEMA_V2`` and ``SCHEMA_V3`` are frozen copies of the schemas
tokentide shipped as versions 1, 2 and 3 (never import them from the product: the point is to upgrade what was
really released).  Add a frozen copy here whenever a schema version is released.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from tokentide.history.store import HistoryStore

HERE = Path(__file__).parent
LONG = os.environ.get("TIDE_LONG_TESTS") == "1"

SCHEMA_V1 = """
CREATE TABLE conversations (
    id          TEXT PRIMARY KEY,
    title       TEXT NOT NULL,
    profile     TEXT,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE TABLE messages (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id  TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    role             TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
    content          TEXT NOT NULL,
    status           TEXT NOT NULL
                     CHECK (status IN ('complete', 'streaming', 'stopped', 'error')),
    finish_reason    TEXT,
    error            TEXT,
    profile          TEXT,
    model            TEXT,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL
);
PRAGMA user_version = 1;
"""

SCHEMA_V2 = """
CREATE TABLE conversations (
    id          TEXT PRIMARY KEY,
    title       TEXT NOT NULL,
    profile     TEXT,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE TABLE messages (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id  TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    role             TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
    content          TEXT NOT NULL,
    status           TEXT NOT NULL
                     CHECK (status IN ('complete', 'streaming', 'stopped', 'error')),
    finish_reason    TEXT,
    error            TEXT,
    profile          TEXT,
    model            TEXT,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL
, stats TEXT);
CREATE INDEX messages_by_conversation ON messages (conversation_id, id);
CREATE INDEX conversations_by_update ON conversations (updated_at, id);
PRAGMA user_version = 2;
"""
"""Version 2 as its files hold it: version 1 with ``stats`` added by ``ALTER TABLE``
(hence the column after the closing line) and two indexes."""

SCHEMA_V3 = """
CREATE TABLE conversations (
    id          TEXT PRIMARY KEY,
    title       TEXT NOT NULL,
    profile     TEXT,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE TABLE messages (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id  TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    role             TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
    content          TEXT NOT NULL,
    status           TEXT NOT NULL
                     CHECK (status IN ('complete', 'streaming', 'stopped', 'error')),
    finish_reason    TEXT,
    error            TEXT,
    profile          TEXT,
    model            TEXT,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL
, stats TEXT, reasoning TEXT, details TEXT);
CREATE INDEX messages_by_conversation ON messages (conversation_id, id);
CREATE INDEX conversations_by_update ON conversations (updated_at, id);
PRAGMA user_version = 3;
"""
"""Version 3 as its files hold it: version 2 with ``reasoning`` and ``details`` added by
``ALTER TABLE``."""

SCHEMAS: dict[int, str] = {1: SCHEMA_V1, 2: SCHEMA_V2, 3: SCHEMA_V3}
"""Every released schema version older than the latest, as SQL."""

V1_SAMPLE = """
INSERT INTO conversations VALUES
    ('01aaaaaaaaaaaaaa', 'Old chat', 'work', '2025-01-01T10:00:00.000000+00:00',
     '2025-01-01T10:05:00.000000+00:00'),
    ('01bbbbbbbbbbbbbb', 'Ünïcode ✓', NULL, '2025-01-02T10:00:00.000000+00:00',
     '2025-01-02T10:00:01.000000+00:00');
INSERT INTO messages (conversation_id, role, content, status, finish_reason, error, profile,
                      model, created_at, updated_at) VALUES
    ('01aaaaaaaaaaaaaa', 'system', 'Be brief.', 'complete', NULL, NULL, NULL, NULL,
     '2025-01-01T10:00:00.000000+00:00', '2025-01-01T10:00:00.000000+00:00'),
    ('01aaaaaaaaaaaaaa', 'user', 'Hello', 'complete', NULL, NULL, NULL, NULL,
     '2025-01-01T10:00:01.000000+00:00', '2025-01-01T10:00:01.000000+00:00'),
    ('01aaaaaaaaaaaaaa', 'assistant', 'Hi there', 'complete', 'stop', NULL, 'work', 'm1',
     '2025-01-01T10:00:02.000000+00:00', '2025-01-01T10:00:03.000000+00:00'),
    ('01aaaaaaaaaaaaaa', 'user', 'And?', 'complete', NULL, NULL, NULL, NULL,
     '2025-01-01T10:05:00.000000+00:00', '2025-01-01T10:05:00.000000+00:00'),
    ('01aaaaaaaaaaaaaa', 'assistant', 'Half an ans', 'streaming', NULL, NULL, 'work', 'm1',
     '2025-01-01T10:05:00.000000+00:00', '2025-01-01T10:05:01.000000+00:00'),
    ('01bbbbbbbbbbbbbb', 'user', '日本語 😀 ok', 'complete', NULL, NULL, NULL, NULL,
     '2025-01-02T10:00:00.000000+00:00', '2025-01-02T10:00:00.000000+00:00'),
    ('01bbbbbbbbbbbbbb', 'assistant', '', 'error', NULL, 'HTTP 500', NULL, NULL,
     '2025-01-02T10:00:00.000000+00:00', '2025-01-02T10:00:01.000000+00:00');
"""
"""Rows as tokentide with schema v1 wrote them."""


def make_db(path: Path, version: int, *, sample: bool = True, extra: str = "") -> Path:
    """An SQLite file at ``path`` in schema ``version`` (WAL, as tokentide writes it),
    built from the frozen SQL, with the sample rows."""
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode = WAL")
        db.executescript(SCHEMAS[version])
        if sample:
            db.executescript(V1_SAMPLE)
        if extra:
            db.executescript(extra)
    finally:
        db.close()
    return path


def query(path: Path, sql: str, params: Sequence[object] = ()) -> list[tuple[object, ...]]:
    """Rows of one query, on a fresh read-only connection that is closed afterwards."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
    try:
        return db.execute(sql, params).fetchall()
    finally:
        db.close()


def integrity(path: Path) -> str:
    return str(query(path, "PRAGMA integrity_check")[0][0])


def user_version(path: Path) -> int:
    value = query(path, "PRAGMA user_version")[0][0]
    assert isinstance(value, int)
    return value


def schema_of(path: Path) -> list[tuple[object, ...]]:
    """The schema objects of a database, comparable across files."""
    rows = query(
        path,
        "SELECT type, name, tbl_name, sql FROM sqlite_master"
        " WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name",
    )
    return [(*row[:3], " ".join(str(row[3]).split())) for row in rows]


def without_root_override() -> list[str]:
    """A command prefix under which file modes bind: as root (CI containers), ``setpriv``
    drops the capabilities that let root ignore them; otherwise nothing."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.fail("running as root needs setpriv (util-linux) to drop DAC override")
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search,-fowner"]


def python(*args: str, **kwargs: object) -> subprocess.Popen[bytes]:
    """Start ``python args...`` with the test's interpreter and environment."""
    return subprocess.Popen([sys.executable, *args], **kwargs)  # type: ignore[call-overload,no-any-return]


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "history.sqlite3"


@pytest.fixture
def store(db_path: Path) -> Iterator[HistoryStore]:
    s = HistoryStore.open(db_path)
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def open_store(tmp_path: Path) -> Iterator[Callable[..., HistoryStore]]:
    """Open stores that are all closed at the end of the test."""
    opened: list[HistoryStore] = []

    def opener(path: Path | None = None) -> HistoryStore:
        s = HistoryStore.open(path or tmp_path / "data" / "history.sqlite3")
        opened.append(s)
        return s

    yield opener
    for s in opened:
        s.close()
