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
on an idle disk), cheap enough for the TUI's event loop.  When another process holds the
lock past the store's ``busy_timeout``, conversation writes queue in memory instead of
blocking (:mod:`tokentide.history.pending`).  A store is safe to use from several threads
(calls are serialised by a lock).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final, Literal

from tokentide.errors import HistoryError
from tokentide.history.columns import (
    _clean_error,
    _clean_text,
    _details_dict,
    _details_json,
    _like_pattern,
    _now,
    _stats_dict,
    _stats_json,
    _time,
    answer_details,
    new_id,
)
from tokentide.history.database import BUSY_TIMEOUT_MS, DB_NAME
from tokentide.history.pending import QueuedWrites, Resolve
from tokentide.history.recorder import AnswerRecorder
from tokentide.history.records import (
    TITLE_CHARS,
    Conversation,
    ConversationSummary,
    StoredMessage,
    make_title,
)

_MODEL_CHARS: Final = 200
"""Longest model name kept (a server may send anything there)."""

__all__ = [
    "DB_NAME",
    "TITLE_CHARS",
    "AnswerRecorder",
    "AnswerStatus",
    "Conversation",
    "ConversationSummary",
    "HistoryStore",
    "StoredMessage",
    "answer_details",
    "make_title",
    "new_id",
]

AnswerStatus = Literal["complete", "stopped", "error"]
_FINAL_STATUSES: Final = frozenset({"complete", "stopped", "error"})
_ROLES: Final = frozenset({"system", "user", "assistant"})

# -- the store ----------------------------------------------------------------------------


class HistoryStore(QueuedWrites):
    """The conversation store.  Open with :meth:`open`; close with :meth:`close` (or use
    it as a context manager)."""

    def __init__(
        self, connection: sqlite3.Connection, path: Path, *, busy_timeout_ms: int = BUSY_TIMEOUT_MS
    ) -> None:
        super().__init__(connection, path, busy_timeout_ms=busy_timeout_ms)
        self._live: set[int] = set()
        """Answer rows this store is writing now (shown as ``streaming``, not
        ``incomplete``)."""

    # -- conversations -------------------------------------------------------------------

    def create_conversation(self, *, title: str = "", profile: str | None = None) -> str:
        """Start a conversation and return its id.  ``title`` is cut to one line of at
        most 60 characters; when empty, the first user message becomes the title."""
        conversation_id = new_id()
        now = _now()
        clean = _clean_text(make_title(title))

        def run(db: sqlite3.Connection, _resolve: Resolve) -> None:
            db.execute(
                "INSERT INTO conversations (id, title, profile, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (conversation_id, clean, profile, now, now),
            )

        record = {"kind": "conversation", "id": conversation_id, "title": clean, "at": now}
        self._save("create a conversation", run, record)
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

        def run(db: sqlite3.Connection, _resolve: Resolve) -> int:
            message_id = self._insert(db, conversation_id, role, content, "complete", now)
            if role == "user":
                db.execute(
                    "UPDATE conversations SET title = ? WHERE id = ? AND title = ''",
                    (make_title(content), conversation_id),
                )
            return message_id

        record = {"kind": "message", "conversation": conversation_id, "role": role,
                  "text": content, "at": now}  # fmt: skip
        return self._save_row("save a message", run, record)

    def begin_answer(
        self, conversation_id: str, *, profile: str | None = None, model: str | None = None
    ) -> int:
        """Create the row of an answer about to stream (status ``streaming``)."""
        now = _now()

        def run(db: sqlite3.Connection, _resolve: Resolve) -> int:
            message_id = self._insert(
                db, conversation_id, "assistant", "", "streaming", now, profile, model
            )
            self._live.add(message_id)
            return message_id

        record = {"kind": "answer", "conversation": conversation_id, "model": model, "at": now}
        return self._save_row("save an answer", run, record)

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
        text, reasoning, now = _clean_text(text), _clean_text(reasoning), _now()

        def run(db: sqlite3.Connection, resolve: Resolve) -> None:
            db.execute(
                "UPDATE messages SET content = content || ?1,"
                " reasoning = coalesce(reasoning || ?2, nullif(?2, '')), updated_at = ?3"
                " WHERE id = ?4 AND status = 'streaming'",
                (text, reasoning, now, resolve(message_id)),
            )

        record = {"kind": "answer text", "answer": message_id, "text": text, "at": now}
        self._save("save an answer", run, record)

    def finish_answer(
        self,
        message_id: int,
        text: str,
        *,
        status: str,
        finish_reason: str | None = None,
        error: str | None = None,
        stats: Mapping[str, float | int | str | None] | None = None,
        reasoning: str | None = None,
        details: Mapping[str, Any] | None = None,
        model: str | None = None,
    ) -> None:
        """Store the final text and outcome (``complete``, ``stopped`` or ``error``),
        the model's reasoning (None or ``""``: none) and the answer's ``details`` (see
        :func:`answer_details`; ValueError for another shape).  Every field is replaced,
        reasoning included; ``model`` (the model the server said answered) only when
        given."""
        if status not in _FINAL_STATUSES:
            raise ValueError(f"an answer finishes as complete, stopped or error, not {status!r}")
        details_json = _details_json(details)
        now = _now()
        values = (
            _clean_text(text),
            status,
            finish_reason,
            None if error is None else _clean_error(error),
            _stats_json(stats),
            _clean_text(reasoning) if reasoning else None,
            details_json,
            now,
            None if model is None else _clean_text(model)[:_MODEL_CHARS],
        )

        def run(db: sqlite3.Connection, resolve: Resolve) -> None:
            real = resolve(message_id)
            cursor = db.execute(
                "UPDATE messages SET content = ?, status = ?, finish_reason = ?, error = ?,"
                " stats = ?, reasoning = ?, details = ?, updated_at = ?,"
                " model = COALESCE(?, model) WHERE id = ? AND role = 'assistant'",
                (*values, real),
            )
            if cursor.rowcount:
                db.execute(
                    "UPDATE conversations SET updated_at = ? WHERE id ="
                    " (SELECT conversation_id FROM messages WHERE id = ?)",
                    (now, real),
                )
            self._live.discard(real)

        record = {"kind": "answer end", "answer": message_id, "text": values[0],
                  "status": status, "error": values[3], "at": now}  # fmt: skip
        self._save("save an answer", run, record)

    def delete_message(self, message_id: int) -> None:
        """Delete one message (missing ids are ignored)."""
        with self._write("delete a message") as db:
            message_id = self._resolve(message_id)
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
            message_id = self._resolve(message_id)
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


def _missing(conversation_id: str) -> HistoryError:
    error = HistoryError(
        f"No conversation {conversation_id!r} in the history.",
        hint="`tide history list` shows the saved conversations.",
    )
    error.exit_code = 2
    return error
