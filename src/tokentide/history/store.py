"""The conversation store: one SQLite file in the data directory.

Guarantees (docs/history.md has the long form):

* a user message is committed by :meth:`HistoryStore.add_message` before the caller
  sends the request, so a crash never loses what the user wrote;
* an answer is a row created at the start with status ``streaming``
  (:meth:`~HistoryStore.begin_answer`), checkpointed while it streams
  (:class:`AnswerRecorder`, at most once per ``interval``, default 1 s: its text and the
  model's reasoning) and finalised as ``complete``, ``stopped`` or ``error`` with its
  details (per-token logprobs, per-node texts).  A row a crash left ``streaming`` is
  reported as ``incomplete``;
* WAL, ``synchronous=NORMAL``, ``busy_timeout`` 10 s and ``BEGIN IMMEDIATE`` for every
  write, so several tide processes can share the file;
* each schema migration is one transaction including the ``user_version`` bump; a file
  from a newer tokentide is refused untouched; an unreadable or corrupt file raises
  :class:`~tokentide.errors.HistoryError` with the path and what to do.

The API is synchronous: every call is one short transaction (well under a millisecond
on an idle disk), cheap enough for the TUI's event loop.  A store is safe to use from
several threads (calls are serialised by a lock).
"""

from __future__ import annotations

import json
import math
import os
import secrets
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal

from tokentide.errors import HistoryError
from tokentide.history.schema import LATEST, MIGRATIONS
from tokentide.logsetup import redact

__all__ = [
    "DB_NAME",
    "AnswerRecorder",
    "AnswerStatus",
    "Conversation",
    "ConversationSummary",
    "HistoryStore",
    "StoredMessage",
    "answer_details",
    "make_title",
]

DB_NAME: Final = "history.sqlite3"
BUSY_TIMEOUT_MS: Final = 10_000
TITLE_CHARS: Final = 60

AnswerStatus = Literal["complete", "stopped", "error"]
_FINAL_STATUSES: Final = frozenset({"complete", "stopped", "error"})
_ROLES: Final = frozenset({"system", "user", "assistant"})


# -- records ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """One saved message.

    ``status`` is ``complete`` for user and system messages; for answers it is
    ``complete``, ``stopped``, ``error``, ``streaming`` (being written by this store
    right now) or ``incomplete`` (left ``streaming`` by a process that died, or being
    written by another tide process).

    ``content`` is the answer as the next request carries it (for a multi-node answer,
    each node's text under its name in bold).  ``reasoning`` is the model's reasoning,
    exactly as received (None when there was none).  ``details`` is None or a dict with
    ``"tokens"``: ``[[text, logprob or None], ...]`` (the answer had per-token logprobs)
    and/or ``"nodes"``: ``[[node id, text], ...]`` (a multi-node answer, in the order the
    nodes first spoke); see :func:`answer_details`.
    """

    id: int
    conversation_id: str
    role: str
    content: str
    status: str
    finish_reason: str | None
    error: str | None
    stats: dict[str, float | int | None]
    profile: str | None
    model: str | None
    created_at: datetime
    updated_at: datetime
    reasoning: str | None = None
    details: dict[str, Any] | None = None

    @property
    def tokens(self) -> list[tuple[str, float | None]]:
        """The answer's tokens with their logprobs (empty when not saved)."""
        return [(text, logprob) for text, logprob in (self.details or {}).get("tokens", ())]

    @property
    def nodes(self) -> list[tuple[str, str]]:
        """A multi-node answer's ``(node id, text)`` pairs (empty for other answers)."""
        return [(node, text) for node, text in (self.details or {}).get("nodes", ())]


@dataclass(frozen=True, slots=True)
class ConversationSummary:
    id: str
    title: str
    profile: str | None
    created_at: datetime
    updated_at: datetime
    message_count: int


@dataclass(frozen=True, slots=True)
class Conversation:
    id: str
    title: str
    profile: str | None
    created_at: datetime
    updated_at: datetime
    messages: tuple[StoredMessage, ...] = field(default=())

    @property
    def message_count(self) -> int:
        return len(self.messages)


def make_title(text: str, limit: int = TITLE_CHARS) -> str:
    """A conversation title from a prompt: its first non-blank line, trimmed, at most
    ``limit`` characters (cut with ``…``).  The stored title keeps the original
    characters; displays sanitise it."""
    line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    line = " ".join(line.split())
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


# -- helpers ------------------------------------------------------------------------------


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text)


_CROCKFORD: Final = "0123456789abcdefghjkmnpqrstvwxyz"
_id_lock = threading.Lock()
_last_id: list[int] = [0]


def new_id() -> str:
    """A 16-character id that sorts by creation time: 50 bits of milliseconds since
    1970 and 30 random bits, in lowercase Crockford base32.  Ids made by one process are
    strictly increasing."""
    with _id_lock:
        value = (time.time_ns() // 1_000_000) << 30 | secrets.randbits(30)
        if value <= _last_id[0]:
            value = _last_id[0] + 1
        _last_id[0] = value
    chars = []
    for _ in range(16):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def _clean_text(text: str) -> str:
    """``text`` as stored: secrets masked (a key echoed in an error body must never
    reach the file or an export) and lone surrogates replaced."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = "".join("\ufffd" if 0xD800 <= ord(c) <= 0xDFFF else c for c in text)
    return redact(text)


def _stats_json(stats: Mapping[str, float | int | None] | None) -> str | None:
    if not stats:
        return None
    clean: dict[str, float | int | None] = {}
    for key, value in stats.items():
        if isinstance(value, float) and not math.isfinite(value):
            value = None
        clean[str(key)] = value
    return json.dumps(clean, sort_keys=True)


def _stats_dict(text: str | None) -> dict[str, float | int | None]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def answer_details(
    *,
    tokens: Iterable[tuple[str, float | None]] = (),
    nodes: Iterable[tuple[str, str]] = (),
) -> dict[str, Any] | None:
    """The ``details`` of an answer as :meth:`HistoryStore.finish_answer` takes them and
    :meth:`HistoryStore.load` gives them back: ``{"tokens": [[text, logprob], ...]}``
    when any token has a logprob, ``{"nodes": [[node id, text], ...]}`` for a multi-node
    answer (both keys when both apply); None when neither does."""
    details: dict[str, Any] = {}
    token_list = [[text, logprob] for text, logprob in tokens]
    if any(logprob is not None for _, logprob in token_list):
        details["tokens"] = token_list
    node_list = [[node, text] for node, text in nodes]
    if node_list:
        details["nodes"] = node_list
    return details or None


def _is_logprob(value: object) -> bool:
    return value is None or (isinstance(value, int | float) and not isinstance(value, bool))


def _is_token(item: Sequence[Any]) -> bool:
    """``[text, logprob or None]``."""
    return len(item) == 2 and isinstance(item[0], str) and _is_logprob(item[1])


def _is_node(item: Sequence[Any]) -> bool:
    """``[node id, text]``."""
    return len(item) == 2 and isinstance(item[0], str) and isinstance(item[1], str)


def _finite(value: float | None) -> float | None:
    """A logprob as stored: a finite number, else None (JSON has no infinities)."""
    return float(value) if value is not None and math.isfinite(value) else None


def _pairs(value: Any, wrong: str) -> list[tuple[Any, ...]]:
    if isinstance(value, str | bytes):
        raise ValueError(wrong)
    try:
        return [tuple(item) for item in value or ()]
    except TypeError:
        raise ValueError(wrong) from None


def _details_value(details: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Check and normalise ``details`` for storing (texts UTF-8 clean, logprobs finite
    or None); raise ValueError for anything but the documented shape."""
    if not details:
        return None
    unknown = set(details) - {"tokens", "nodes"}
    if unknown:
        raise ValueError(f"answer details hold 'tokens' and 'nodes', not {sorted(unknown)!r}")
    clean: dict[str, Any] = {}
    wrong_tokens = "answer details: 'tokens' is a list of [text, logprob or None]"
    tokens = _pairs(details.get("tokens"), wrong_tokens)
    if not all(_is_token(t) for t in tokens):
        raise ValueError(wrong_tokens)
    if tokens:
        clean["tokens"] = [[_clean_text(text), _finite(logprob)] for text, logprob in tokens]
    wrong_nodes = "answer details: 'nodes' is a list of [node id, text]"
    nodes = _pairs(details.get("nodes"), wrong_nodes)
    if not all(_is_node(n) for n in nodes):
        raise ValueError(wrong_nodes)
    if nodes:
        clean["nodes"] = [[_clean_text(node), _clean_text(text)] for node, text in nodes]
    return clean or None


def _details_json(details: Mapping[str, Any] | None) -> str | None:
    clean = _details_value(details)
    if clean is None:
        return None
    return json.dumps(clean, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _details_dict(text: str | None) -> dict[str, Any] | None:
    """Stored details read back.  Whatever does not have the documented shape (a file
    edited by hand, written by something else) is left out rather than failing the
    load; None when nothing usable remains."""
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if not isinstance(value, dict):
        return None
    details: dict[str, Any] = {}
    tokens = value.get("tokens")
    if isinstance(tokens, list) and all(isinstance(t, list) and _is_token(t) for t in tokens):
        details["tokens"] = [[text, _finite(logprob)] for text, logprob in tokens]
    nodes = value.get("nodes")
    if isinstance(nodes, list) and all(isinstance(n, list) and _is_node(n) for n in nodes):
        details["nodes"] = [[node, text] for node, text in nodes]
    return details or None


def _like_pattern(query: str) -> str:
    escaped = query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


# -- the store ----------------------------------------------------------------------------


class HistoryStore:
    """The conversation store.  Open with :meth:`open`; close with :meth:`close` (or use
    it as a context manager)."""

    def __init__(self, connection: sqlite3.Connection, path: Path) -> None:
        self._db: sqlite3.Connection | None = connection
        self.path = path
        self._lock = threading.RLock()
        self._live: set[int] = set()
        """Answer rows this store is writing now (shown as ``streaming``, not
        ``incomplete``)."""

    # -- opening -------------------------------------------------------------------------

    @classmethod
    def open(cls, path: Path | str | None = None) -> HistoryStore:
        """Open (creating if needed) the store at ``path``, default
        ``data_dir()/history.sqlite3``, and bring its schema up to date."""
        if path is None:
            from tokentide.config.paths import data_dir

            path = data_dir() / DB_NAME
        path = Path(path).expanduser()
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
                timeout=BUSY_TIMEOUT_MS / 1000,
                isolation_level=None,
                check_same_thread=False,
            )
        except sqlite3.Error as error:
            raise _translate(error, path, "open") from None
        store = cls(connection, path)
        try:
            store._prepare()
        except BaseException:
            connection.close()
            raise
        return store

    def _prepare(self) -> None:
        db = self._conn()
        with self._guard("open"):
            db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
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

    # -- plumbing ------------------------------------------------------------------------

    def close(self) -> None:
        """Close the database.  Idempotent."""
        with self._lock:
            if self._db is not None:
                db, self._db = self._db, None
                db.close()

    def __enter__(self) -> HistoryStore:
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

    # -- conversations -------------------------------------------------------------------

    def create_conversation(self, *, title: str = "", profile: str | None = None) -> str:
        """Start a conversation and return its id.  ``title`` is cut to one line of at
        most 60 characters; when empty, the first user message becomes the title."""
        conversation_id = new_id()
        now = _now()
        with self._write("create a conversation") as db:
            db.execute(
                "INSERT INTO conversations (id, title, profile, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (conversation_id, _clean_text(make_title(title)), profile, now, now),
            )
        return conversation_id

    def rename(self, conversation_id: str, title: str) -> None:
        title = _clean_text(" ".join(title.split()))
        with self._write("rename a conversation") as db:
            cursor = db.execute(
                "UPDATE conversations SET title = ?, updated_at = ? WHERE id = ?",
                (title, _now(), conversation_id),
            )
            if cursor.rowcount == 0:
                raise _missing(conversation_id)

    def delete(self, conversation_id: str) -> None:
        """Delete a conversation and all its messages."""
        with self._write("delete a conversation") as db:
            cursor = db.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,))
            if cursor.rowcount == 0:
                raise _missing(conversation_id)

    def last_conversation_id(self) -> str | None:
        """The conversation with the most recent activity, if any."""
        with self._read("read the history") as db:
            row = db.execute(
                "SELECT id FROM conversations ORDER BY updated_at DESC, id DESC LIMIT 1"
            ).fetchone()
        return None if row is None else str(row[0])

    def resolve(self, prefix: str) -> str:
        """The full id of the one conversation whose id starts with ``prefix``."""
        prefix = prefix.strip().lower()
        if not prefix:
            raise HistoryError("No conversation id given.")
        pattern = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        with self._read("read the history") as db:
            rows = db.execute(
                "SELECT id FROM conversations WHERE id LIKE ? ESCAPE '\\' LIMIT 2", (pattern,)
            ).fetchall()
        if not rows:
            raise _missing(prefix)
        if len(rows) > 1:
            raise HistoryError(
                f"More than one conversation id starts with {prefix!r}.",
                hint="Give more characters of the id (`tide history list` shows them).",
            )
        return str(rows[0][0])

    def list_conversations(
        self, *, search: str | None = None, limit: int = 200
    ) -> list[ConversationSummary]:
        """Conversations, most recently active first.  ``search`` keeps those whose
        title or any message contains it (case-insensitive for ASCII letters)."""
        query = (
            "SELECT c.id, c.title, c.profile, c.created_at, c.updated_at,"
            " (SELECT count(*) FROM messages m WHERE m.conversation_id = c.id)"
            " FROM conversations c"
        )
        params: list[Any] = []
        if search and search.strip():
            pattern = _like_pattern(search.strip())
            query += (
                " WHERE c.title LIKE ?1 ESCAPE '\\' OR EXISTS (SELECT 1 FROM messages m"
                " WHERE m.conversation_id = c.id AND m.content LIKE ?1 ESCAPE '\\')"
            )
            params.append(pattern)
        query += f" ORDER BY c.updated_at DESC, c.id DESC LIMIT {max(0, int(limit))}"
        with self._read("list conversations") as db:
            rows = db.execute(query, params).fetchall()
        return [
            ConversationSummary(
                id=row[0],
                title=row[1],
                profile=row[2],
                created_at=_time(row[3]),
                updated_at=_time(row[4]),
                message_count=int(row[5]),
            )
            for row in rows
        ]

    def load(self, conversation_id: str) -> Conversation:
        """A conversation with its messages, oldest first."""
        with self._read("load a conversation") as db:
            head = db.execute(
                "SELECT id, title, profile, created_at, updated_at FROM conversations WHERE id = ?",
                (conversation_id,),
            ).fetchone()
            if head is None:
                raise _missing(conversation_id)
            rows = db.execute(
                "SELECT id, conversation_id, role, content, status, finish_reason, error,"
                " stats, profile, model, created_at, updated_at, reasoning, details"
                " FROM messages"
                " WHERE conversation_id = ? ORDER BY id",
                (conversation_id,),
            ).fetchall()
            live = set(self._live)
        return Conversation(
            id=head[0],
            title=head[1],
            profile=head[2],
            created_at=_time(head[3]),
            updated_at=_time(head[4]),
            messages=tuple(_message(row, live) for row in rows),
        )

    # -- messages ------------------------------------------------------------------------

    def add_message(self, conversation_id: str, role: str, content: str) -> int:
        """Store a user or system message (committed when this returns) and return its
        id.  The first user message titles a conversation created without a title."""
        if role not in ("user", "system"):
            raise ValueError(f"add_message stores user and system messages, not {role!r}")
        content = _clean_text(content)
        now = _now()
        with self._write("save a message") as db:
            message_id = self._insert(db, conversation_id, role, content, "complete", now)
            if role == "user":
                db.execute(
                    "UPDATE conversations SET title = ? WHERE id = ? AND title = ''",
                    (make_title(content), conversation_id),
                )
        return message_id

    def begin_answer(
        self, conversation_id: str, *, profile: str | None = None, model: str | None = None
    ) -> int:
        """Create the row of an answer about to stream (status ``streaming``)."""
        now = _now()
        with self._write("save an answer") as db:
            message_id = self._insert(
                db, conversation_id, "assistant", "", "streaming", now, profile, model
            )
            self._live.add(message_id)
        return message_id

    def record_answer(
        self,
        conversation_id: str,
        *,
        profile: str | None = None,
        model: str | None = None,
        interval: float = 1.0,
    ) -> AnswerRecorder:
        """:meth:`begin_answer` wrapped in an :class:`AnswerRecorder`."""
        message_id = self.begin_answer(conversation_id, profile=profile, model=model)
        return AnswerRecorder(self, message_id, interval=interval)

    def checkpoint_answer(self, message_id: int, text: str) -> None:
        """Save the text streamed so far (the whole of it) of a ``streaming`` answer."""
        with self._write("save an answer") as db:
            db.execute(
                "UPDATE messages SET content = ?, updated_at = ? WHERE id = ?"
                " AND status = 'streaming'",
                (_clean_text(text), _now(), message_id),
            )

    def _append_answer(self, message_id: int, text: str, reasoning: str = "") -> None:
        """Append ``text`` (and ``reasoning``) to a ``streaming`` answer: the recorder's
        cheap checkpoint, one UPDATE for both.  ``reasoning`` stays NULL until some
        arrives."""
        with self._write("save an answer") as db:
            db.execute(
                "UPDATE messages SET content = content || ?1,"
                " reasoning = coalesce(reasoning || ?2, nullif(?2, '')), updated_at = ?3"
                " WHERE id = ?4 AND status = 'streaming'",
                (_clean_text(text), _clean_text(reasoning), _now(), message_id),
            )

    def finish_answer(
        self,
        message_id: int,
        text: str,
        *,
        status: str,
        finish_reason: str | None = None,
        error: str | None = None,
        stats: Mapping[str, float | int | None] | None = None,
        reasoning: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        """Store the final text and outcome (``complete``, ``stopped`` or ``error``),
        the model's reasoning (None or ``""``: none) and the answer's ``details`` (see
        :func:`answer_details`; ValueError for another shape).  Every field is replaced,
        reasoning included."""
        if status not in _FINAL_STATUSES:
            raise ValueError(f"an answer finishes as complete, stopped or error, not {status!r}")
        details_json = _details_json(details)
        now = _now()
        with self._write("save an answer") as db:
            cursor = db.execute(
                "UPDATE messages SET content = ?, status = ?, finish_reason = ?, error = ?,"
                " stats = ?, reasoning = ?, details = ?, updated_at = ?"
                " WHERE id = ? AND role = 'assistant'",
                (
                    _clean_text(text),
                    status,
                    finish_reason,
                    None if error is None else _clean_text(error),
                    _stats_json(stats),
                    _clean_text(reasoning) if reasoning else None,
                    details_json,
                    now,
                    message_id,
                ),
            )
            if cursor.rowcount:
                db.execute(
                    "UPDATE conversations SET updated_at = ? WHERE id ="
                    " (SELECT conversation_id FROM messages WHERE id = ?)",
                    (now, message_id),
                )
            self._live.discard(message_id)

    def delete_message(self, message_id: int) -> None:
        """Delete one message (missing ids are ignored)."""
        with self._write("delete a message") as db:
            db.execute("DELETE FROM messages WHERE id = ?", (message_id,))
            self._live.discard(message_id)

    def truncate_after(
        self, conversation_id: str, message_id: int, *, inclusive: bool = False
    ) -> int:
        """Delete the messages after ``message_id`` (and the message itself when
        ``inclusive``); return how many were deleted.

        Regenerate the last answer: ``truncate_after(cid, last_answer_id, inclusive=True)``.
        Edit and resend the last prompt: ``truncate_after(cid, last_prompt_id,
        inclusive=True)``, then :meth:`add_message` with the new text."""
        op = ">=" if inclusive else ">"
        with self._write("delete messages") as db:
            cursor = db.execute(
                f"DELETE FROM messages WHERE conversation_id = ? AND id {op} ?",
                (conversation_id, message_id),
            )
            self._live.difference_update(
                i for i in list(self._live) if (i >= message_id if inclusive else i > message_id)
            )
            return int(cursor.rowcount)

    def truncate(self, conversation_id: str, *, keep: int) -> int:
        """Keep the first ``keep`` messages of a conversation (in order, every role and
        status counted) and delete the rest; return how many were deleted."""
        with self._write("delete messages") as db:
            cursor = db.execute(
                "DELETE FROM messages WHERE conversation_id = ?1 AND id NOT IN"
                " (SELECT id FROM messages WHERE conversation_id = ?1 ORDER BY id LIMIT ?2)",
                (conversation_id, max(0, keep)),
            )
            return int(cursor.rowcount)

    def _insert(
        self,
        db: sqlite3.Connection,
        conversation_id: str,
        role: str,
        content: str,
        status: str,
        now: str,
        profile: str | None = None,
        model: str | None = None,
    ) -> int:
        if (
            db.execute(
                "UPDATE conversations SET updated_at = ? WHERE id = ?", (now, conversation_id)
            ).rowcount
            == 0
        ):
            raise _missing(conversation_id)
        cursor = db.execute(
            "INSERT INTO messages (conversation_id, role, content, status, profile, model,"
            " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (conversation_id, role, content, status, profile, model, now, now),
        )
        assert cursor.lastrowid is not None
        return int(cursor.lastrowid)


def _message(row: tuple[Any, ...], live: set[int]) -> StoredMessage:
    status = row[4]
    if status == "streaming" and row[0] not in live:
        status = "incomplete"
    return StoredMessage(
        id=int(row[0]),
        conversation_id=row[1],
        role=row[2],
        content=row[3],
        status=status,
        finish_reason=row[5],
        error=row[6],
        stats=_stats_dict(row[7]),
        profile=row[8],
        model=row[9],
        created_at=_time(row[10]),
        updated_at=_time(row[11]),
        reasoning=row[12] if isinstance(row[12], str) and row[12] else None,
        details=_details_dict(row[13] if isinstance(row[13], str) else None),
    )


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


def _missing(conversation_id: str) -> HistoryError:
    error = HistoryError(
        f"No conversation {conversation_id!r} in the history.",
        hint="`tide history list` shows the saved conversations.",
    )
    error.exit_code = 2
    return error


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
        return HistoryError(
            f"The history database {path} stayed locked by another process for "
            f"{BUSY_TIMEOUT_MS // 1000} s; could not {what}.",
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


# -- recording a streaming answer ---------------------------------------------------------


def _joined(parts: list[str]) -> str:
    """The pieces as one string, kept joined in place (one join, however often read)."""
    if len(parts) > 1:
        parts[:] = ["".join(parts)]
    return parts[0] if parts else ""


class AnswerRecorder:
    """Saves one streaming answer: :meth:`append` per batch of tokens (and
    :meth:`append_reasoning` per batch of reasoning), :meth:`finish` once.

    ``append`` and ``append_reasoning`` write a checkpoint (one UPDATE carrying the new
    text and the new reasoning) when ``interval`` seconds (``time.monotonic``) have
    passed since the last one, so a crash loses at most what was appended during the
    last ``interval``.  When tokens stop arriving, pending text waits for the next
    append; a caller with a timer can call :meth:`poll` (or :meth:`flush`) to bound the
    loss in time as well.

    A failed checkpoint (disk full, database locked for 10 s) does not raise: the text
    stays in memory, :attr:`last_error` holds the error and the next checkpoint retries.
    :meth:`finish` raises :class:`~tokentide.errors.HistoryError` if the final write
    fails.
    """

    def __init__(
        self,
        store: HistoryStore,
        message_id: int,
        *,
        interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.message_id = message_id
        self.interval = interval
        self._clock = clock
        self._parts: list[str] = []
        self._saved = 0
        """How many characters of :attr:`text` the database holds."""
        self._length = 0
        self._thoughts: list[str] = []
        self._thoughts_saved = 0
        """How many characters of :attr:`reasoning` the database holds."""
        self._thoughts_length = 0
        self._last = clock()
        self.finished = False
        self.last_error: HistoryError | None = None

    @property
    def text(self) -> str:
        """Everything appended so far."""
        return _joined(self._parts)

    @property
    def reasoning(self) -> str:
        """All the reasoning appended so far."""
        return _joined(self._thoughts)

    def append(self, text: str) -> None:
        if self.finished:
            raise HistoryError("This answer was already finished.")
        if text:
            self._parts.append(text)
            self._length += len(text)
        self.poll()

    def append_reasoning(self, text: str) -> None:
        """Add a piece of the model's reasoning; checkpointed like :meth:`append`."""
        if self.finished:
            raise HistoryError("This answer was already finished.")
        if text:
            self._thoughts.append(text)
            self._thoughts_length += len(text)
        self.poll()

    @property
    def _pending(self) -> bool:
        return self._saved != self._length or self._thoughts_saved != self._thoughts_length

    def poll(self) -> bool:
        """Checkpoint if text or reasoning is pending and ``interval`` has passed;
        return whether a checkpoint was written."""
        if self.finished or not self._pending:
            return False
        if self._clock() - self._last < self.interval:
            return False
        return self.flush()

    def flush(self) -> bool:
        """Checkpoint the pending text and reasoning now; return whether it was written."""
        if self.finished or not self._pending:
            return False
        text = self.text
        reasoning = self.reasoning
        self._last = self._clock()
        try:
            self.store._append_answer(
                self.message_id, text[self._saved :], reasoning[self._thoughts_saved :]
            )
        except HistoryError as error:
            self.last_error = error
            return False
        self._saved = len(text)
        self._thoughts_saved = len(reasoning)
        self.last_error = None
        return True

    def finish(
        self,
        status: str = "complete",
        *,
        text: str | None = None,
        finish_reason: str | None = None,
        error: str | None = None,
        stats: Mapping[str, float | int | None] | None = None,
        reasoning: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        """Store the final state.  ``text`` and ``reasoning`` replace what was appended,
        when given; ``details`` as :meth:`HistoryStore.finish_answer` takes them."""
        if self.finished:
            return
        final = self.text if text is None else text
        self.store.finish_answer(
            self.message_id,
            final,
            status=status,
            finish_reason=finish_reason,
            error=error,
            stats=stats,
            reasoning=self.reasoning if reasoning is None else reasoning,
            details=details,
        )
        self.finished = True
