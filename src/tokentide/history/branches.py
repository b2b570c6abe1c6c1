"""Writes that make a whole conversation at once: :meth:`BranchWrites.fork` (a new
conversation from one branch of another) and :meth:`BranchWrites.import_conversation`
(a checked JSON export, :mod:`tokentide.history.importing`).

Each is one write transaction: the conversation and all its messages are there, or
nothing is.  Neither queues while another process holds the lock (the caller needs the
rows at once, to open the new conversation): they wait ``busy_timeout`` and then raise
:class:`~tokentide.errors.HistoryBusy`, as :meth:`~HistoryStore.rename` does.  Message
ids are always the store's own (parents and the active leaf mapped to them); every
copied message keeps its other fields, times included.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import TYPE_CHECKING, Final

from tokentide.history.columns import (
    _clean_error,
    _clean_text,
    _details_json,
    _now,
    _stats_json,
    new_id,
)
from tokentide.history.settings import _settings_json
from tokentide.history.tree import MessageTree, no_conversation

if TYPE_CHECKING:
    from tokentide.history.importing import ImportedConversation

__all__ = ["BranchWrites"]

_MODEL_CHARS: Final = 200
"""Longest model name kept, as :meth:`HistoryStore.finish_answer` keeps it."""

_INSERT_MESSAGE: Final = (
    "INSERT INTO messages (conversation_id, parent_id, role, content, status, finish_reason,"
    " error, stats, profile, model, created_at, updated_at, reasoning, details)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def _stamp(moment: datetime) -> str:
    """A time as the store writes it (:func:`~tokentide.history.columns._now`)."""
    return moment.isoformat(timespec="microseconds")


class BranchWrites(MessageTree):
    """Fork and import, on top of the tree reads."""

    def fork(self, conversation_id: str, message_id: int, *, title: str | None = None) -> str:
        """A new conversation holding copies of the branch from the root down to
        ``message_id`` (every field kept, parents mapped), with the same profile and
        settings, titled ``title`` or "<old title> (fork)", its active leaf the copy of
        ``message_id``; return its id.  A message not in that conversation:
        :class:`~tokentide.errors.HistoryError`.  An answer still streaming is copied as
        it is now (the copy shows as ``incomplete``)."""
        fork_id = new_id()
        now = _now()
        with self._write("fork a conversation") as db:
            head = db.execute(
                "SELECT title, profile, settings FROM conversations WHERE id = ?",
                (conversation_id,),
            ).fetchone()
            if head is None:
                raise no_conversation(conversation_id)
            real = self._resolve(message_id)
            self._check_member(db, conversation_id, real)
            old_title, profile, settings = head
            name = f"{old_title or 'Untitled conversation'} (fork)" if title is None else title
            db.execute(
                "INSERT INTO conversations (id, title, profile, created_at, updated_at, settings)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (fork_id, _clean_text(" ".join(name.split())), profile, now, now, settings),
            )
            copies: dict[int, int] = {}
            for row in self._branch_rows(db, real):
                # _COLUMNS order: id, conversation_id, role, content, status, finish_reason,
                # error, stats, profile, model, created_at, updated_at, reasoning, details,
                # parent_id.
                parent = None if row[14] is None else copies[int(row[14])]
                copies[int(row[0])] = self._insert_row(db, fork_id, parent, row[2:14])
            db.execute(
                "UPDATE conversations SET active_leaf = ? WHERE id = ?", (copies[real], fork_id)
            )
        return fork_id

    def import_conversation(self, conversation: ImportedConversation) -> str:
        """Write a checked export (:func:`~tokentide.history.importing.parse_export`) as
        a new conversation and return its id: the file's id unless the store already
        has it (then a new one).  Texts are cleaned as every write cleans them (known
        keys and credential shapes masked)."""
        with self._write("import a conversation") as db:
            conversation_id = conversation.id
            if (
                conversation_id is None
                or db.execute(
                    "SELECT 1 FROM conversations WHERE id = ?", (conversation_id,)
                ).fetchone()
                is not None
            ):
                conversation_id = new_id()
            settings = conversation.settings
            db.execute(
                "INSERT INTO conversations (id, title, profile, created_at, updated_at, settings)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (
                    conversation_id,
                    _clean_text(" ".join(conversation.title.split())),
                    None if conversation.profile is None else _clean_text(conversation.profile),
                    _stamp(conversation.created_at),
                    _stamp(conversation.updated_at),
                    _settings_json(None if settings is None else settings.cleaned(_clean_text)),
                ),
            )
            ids: dict[int, int] = {}
            for m in conversation.messages:
                values = (
                    m.role,
                    _clean_text(m.content),
                    # A row left streaming is stored so, and reads back as incomplete.
                    "streaming" if m.status == "incomplete" else m.status,
                    None if m.finish_reason is None else _clean_text(m.finish_reason),
                    None if m.error is None else _clean_error(m.error),
                    _stats_json(m.stats),
                    None if m.profile is None else _clean_text(m.profile),
                    None if m.model is None else _clean_text(m.model)[:_MODEL_CHARS],
                    _stamp(m.created_at),
                    _stamp(m.updated_at),
                    _clean_text(m.reasoning) if m.reasoning else None,
                    _details_json(m.details),
                )
                parent = None if m.parent is None else ids[m.parent]
                ids[m.key] = self._insert_row(db, conversation_id, parent, values)
            if conversation.active_leaf is not None:
                db.execute(
                    "UPDATE conversations SET active_leaf = ? WHERE id = ?",
                    (ids[conversation.active_leaf], conversation_id),
                )
        return conversation_id

    @staticmethod
    def _insert_row(
        db: sqlite3.Connection, conversation_id: str, parent: int | None, values: tuple[object, ...]
    ) -> int:
        """Insert one message: ``values`` are role, content, status, finish_reason, error,
        stats, profile, model, created_at, updated_at, reasoning, details (as stored)."""
        cursor = db.execute(_INSERT_MESSAGE, (conversation_id, parent, *values))
        assert cursor.lastrowid is not None
        return int(cursor.lastrowid)
