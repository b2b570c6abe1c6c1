"""Messages as a tree (schema 4): each message names its parent, each conversation the
tip of the branch on screen (``active_leaf``) and its own settings.

:class:`MessageTree` holds the reads of a conversation (its active branch, any branch,
a message's children, its settings) and the writes that move the active leaf or change
the settings; :class:`~tokentide.history.store.HistoryStore` adds the writes of
conversations and messages on top.  Every walk of the tree follows ``parent_id`` only
to smaller ids (a parent is always older than its children), so a damaged file cannot
make a walk loop.
"""

from __future__ import annotations

import enum
import sqlite3
from pathlib import Path
from typing import Any, Final, Literal, TypeAlias

from tokentide.errors import HistoryError
from tokentide.history.columns import _clean_text, _details_dict, _like_pattern, _stats_dict, _time
from tokentide.history.database import BUSY_TIMEOUT_MS
from tokentide.history.pending import QueuedWrites, Resolve
from tokentide.history.records import (
    AnswerDetails,
    Conversation,
    ConversationSummary,
    StoredMessage,
)
from tokentide.history.settings import ConversationSettings, _settings_json, _settings_value

__all__ = ["ACTIVE_LEAF", "MessageTree", "Parent", "no_conversation"]


class _Default(enum.Enum):
    ACTIVE_LEAF = "the active leaf"


ACTIVE_LEAF: Final = _Default.ACTIVE_LEAF
"""The default parent of a new message: the tip of the branch on screen."""

Parent: TypeAlias = int | Literal[_Default.ACTIVE_LEAF] | None
"""A new message's parent: a message id, None (a new root) or :data:`ACTIVE_LEAF`."""

_COLUMNS: Final = (
    "id, conversation_id, role, content, status, finish_reason, error, stats, profile,"
    " model, created_at, updated_at, reasoning, details, parent_id"
)

_UP: Final = (
    "WITH RECURSIVE up(id, depth) AS (SELECT ?, 0 UNION ALL"
    " SELECT m.parent_id, up.depth + 1 FROM messages m JOIN up ON m.id = up.id"
    " WHERE m.parent_id < m.id)"
)
"""The ids from a message up to its root, with their distance from it."""

_DOWN: Final = (
    "WITH RECURSIVE down(id) AS (SELECT ? UNION ALL"
    " SELECT m.id FROM messages m JOIN down ON m.parent_id = down.id WHERE m.id > down.id)"
)
"""A message's id and the ids of all its descendants."""


class MessageTree(QueuedWrites):
    """The tree reads and the active-leaf and settings writes of the store."""

    def __init__(
        self, connection: sqlite3.Connection, path: Path, *, busy_timeout_ms: int = BUSY_TIMEOUT_MS
    ) -> None:
        super().__init__(connection, path, busy_timeout_ms=busy_timeout_ms)
        self._live: set[int] = set()
        """Answer rows this store is writing now (shown as ``streaming``, not
        ``incomplete``)."""

    # -- reads ---------------------------------------------------------------------------

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
            raise no_conversation(prefix)
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

    def load(self, conversation_id: str, *, branch: bool = True) -> Conversation:
        """A conversation with the messages of its active branch, root first (none
        with ``branch=False``: its title, leaf and settings alone)."""
        with self._read("load a conversation") as db:
            head = db.execute(
                "SELECT id, title, profile, created_at, updated_at, settings"
                " FROM conversations WHERE id = ?",
                (conversation_id,),
            ).fetchone()
            if head is None:
                raise no_conversation(conversation_id)
            leaf = self._leaf(db, conversation_id)
            rows = [] if leaf is None or not branch else self._branch_rows(db, leaf)
            live = set(self._live)
        return Conversation(
            id=head[0],
            title=head[1],
            profile=head[2],
            created_at=_time(head[3]),
            updated_at=_time(head[4]),
            messages=tuple(_message(row, live) for row in rows),
            active_leaf=leaf,
            settings=_settings_value(head[5] if isinstance(head[5], str) else None),
        )

    def branch(self, leaf_id: int) -> tuple[StoredMessage, ...]:
        """The messages from the root of ``leaf_id``'s conversation down to it."""
        with self._read("read a branch") as db:
            rows = self._branch_rows(db, self._resolve(leaf_id))
            live = set(self._live)
        if not rows:
            raise HistoryError(f"No message {leaf_id} in the history.")
        return tuple(_message(row, live) for row in rows)

    def messages(self, conversation_id: str) -> tuple[StoredMessage, ...]:
        """Every message of the conversation, on every branch, oldest first (a parent
        always comes before its children)."""
        with self._read("read a conversation") as db:
            if (
                db.execute(
                    "SELECT 1 FROM conversations WHERE id = ?", (conversation_id,)
                ).fetchone()
                is None
            ):
                raise no_conversation(conversation_id)
            rows = db.execute(
                f"SELECT {_COLUMNS} FROM messages WHERE conversation_id = ? ORDER BY id",
                (conversation_id,),
            ).fetchall()
            live = set(self._live)
        return tuple(_message(row, live) for row in rows)

    def children(self, message_id: int) -> tuple[StoredMessage, ...]:
        """The messages that answer or follow ``message_id`` (its siblings-to-be: every
        regenerated answer or edited prompt after it), oldest first."""
        with self._read("read a conversation") as db:
            rows = db.execute(
                f"SELECT {_COLUMNS} FROM messages WHERE parent_id = ?1 AND id > ?1 ORDER BY id",
                (self._resolve(message_id),),
            ).fetchall()
            live = set(self._live)
        return tuple(_message(row, live) for row in rows)

    def roots(self, conversation_id: str) -> tuple[StoredMessage, ...]:
        """The first messages of a conversation's branches (usually one), oldest first."""
        with self._read("read a conversation") as db:
            rows = db.execute(
                f"SELECT {_COLUMNS} FROM messages WHERE conversation_id = ?"
                " AND parent_id IS NULL ORDER BY id",
                (conversation_id,),
            ).fetchall()
            live = set(self._live)
        return tuple(_message(row, live) for row in rows)

    def settings(self, conversation_id: str) -> ConversationSettings | None:
        """The conversation's own settings (None: its profile's)."""
        with self._read("read a conversation") as db:
            row = db.execute(
                "SELECT settings FROM conversations WHERE id = ?", (conversation_id,)
            ).fetchone()
        if row is None:
            raise no_conversation(conversation_id)
        return _settings_value(row[0] if isinstance(row[0], str) else None)

    # -- writes --------------------------------------------------------------------------

    def set_active_leaf(self, conversation_id: str, message_id: int) -> None:
        """Put the branch ending at ``message_id`` (a message of this conversation) on
        screen: :meth:`load` gives it, the next message follows it.  Queued like the
        other conversation writes while another process holds the lock."""

        def run(db: sqlite3.Connection, resolve: Resolve) -> None:
            real = resolve(message_id)
            self._check_member(db, conversation_id, real)
            db.execute(
                "UPDATE conversations SET active_leaf = ? WHERE id = ?", (real, conversation_id)
            )

        record = {"kind": "active leaf", "conversation": conversation_id, "message": message_id}
        self._save("switch branches", run, record)

    def set_settings(self, conversation_id: str, settings: ConversationSettings | None) -> None:
        """Save the conversation's own settings (None or all fields None: the profile's
        again).  Texts are stored as messages are (known keys masked)."""
        if settings is not None:
            settings = settings.cleaned(_clean_text)
        text = _settings_json(settings)

        def run(db: sqlite3.Connection, _resolve: Resolve) -> None:
            cursor = db.execute(
                "UPDATE conversations SET settings = ? WHERE id = ?", (text, conversation_id)
            )
            if cursor.rowcount == 0:
                raise no_conversation(conversation_id)

        record = {"kind": "settings", "conversation": conversation_id, "settings": text}
        self._save("save the conversation's settings", run, record)

    # -- helpers for the store -----------------------------------------------------------

    @staticmethod
    def _leaf(db: sqlite3.Connection, conversation_id: str) -> int | None:
        """The active leaf; when it is unset or names no message of the conversation
        (a file edited by hand), the newest message."""
        row = db.execute(
            "SELECT m.id FROM conversations c JOIN messages m ON m.id = c.active_leaf"
            " AND m.conversation_id = c.id WHERE c.id = ?",
            (conversation_id,),
        ).fetchone()
        if row is None:
            row = db.execute(
                "SELECT max(id) FROM messages WHERE conversation_id = ?", (conversation_id,)
            ).fetchone()
        return None if row is None or row[0] is None else int(row[0])

    @staticmethod
    def _branch_rows(db: sqlite3.Connection, leaf: int) -> list[tuple[Any, ...]]:
        columns = ", ".join(f"m.{c.strip()}" for c in _COLUMNS.split(","))
        return db.execute(
            f"{_UP} SELECT {columns} FROM up JOIN messages m ON m.id = up.id"
            " ORDER BY up.depth DESC",
            (leaf,),
        ).fetchall()

    @staticmethod
    def _subtree(db: sqlite3.Connection, message_id: int) -> list[int]:
        """``message_id`` and all its descendants (empty when there is no such message)."""
        rows = db.execute(
            f"{_DOWN} SELECT id FROM down WHERE id IN (SELECT id FROM messages)", (message_id,)
        ).fetchall()
        return [int(row[0]) for row in rows]

    @staticmethod
    def _check_member(db: sqlite3.Connection, conversation_id: str, message_id: int) -> None:
        row = db.execute(
            "SELECT conversation_id FROM messages WHERE id = ?", (message_id,)
        ).fetchone()
        if row is None or row[0] != conversation_id:
            raise HistoryError(
                f"Message {message_id} is not part of conversation {conversation_id!r}."
            )


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
        details=AnswerDetails.from_dict(
            _details_dict(row[13] if isinstance(row[13], str) else None)
        ),
        parent_id=None if row[14] is None else int(row[14]),
    )


def no_conversation(conversation_id: str) -> HistoryError:
    """No conversation ``conversation_id`` (exit 2, a usage error)."""
    error = HistoryError(
        f"No conversation {conversation_id!r} in the history.",
        hint="`tide history list` shows the saved conversations.",
    )
    error.exit_code = 2
    return error
