"""The conversation store: one SQLite file in the data directory.

Guarantees (docs/history.md has the long form):

* messages form a tree (schema 4): each names its parent, a conversation the tip of the
  branch on screen (its active leaf), which every new message follows unless told
  otherwise and then becomes; :meth:`load` gives that branch (:mod:`.tree`);
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

import json
import sqlite3
from collections.abc import Mapping
from typing import Any, Final, Literal

from tokentide.history.branches import BranchWrites
from tokentide.history.columns import (
    _clean_error,
    _clean_text,
    _details_json,
    _now,
    _stats_json,
    answer_details,
    new_id,
)
from tokentide.history.database import DB_NAME
from tokentide.history.pending import Resolve
from tokentide.history.recorder import AnswerRecorder
from tokentide.history.records import (
    TITLE_CHARS,
    Conversation,
    ConversationSummary,
    StoredMessage,
    make_title,
)
from tokentide.history.settings import ConversationSettings
from tokentide.history.tree import ACTIVE_LEAF, Parent, no_conversation

_MODEL_CHARS: Final = 200
"""Longest model name kept (a server may send anything there)."""

__all__ = [
    "ACTIVE_LEAF",
    "DB_NAME",
    "TITLE_CHARS",
    "AnswerRecorder",
    "AnswerStatus",
    "Conversation",
    "ConversationSettings",
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


class HistoryStore(BranchWrites):
    """The conversation store.  Open with :meth:`open`; close with :meth:`close` (or use
    it as a context manager).  Reads of the tree, the active leaf and the settings come
    from :class:`~tokentide.history.tree.MessageTree`."""

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
                raise no_conversation(conversation_id)

    def delete(self, conversation_id: str) -> None:
        """Delete a conversation and all its messages."""
        with self._write("delete a conversation") as db:
            cursor = db.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,))
            if cursor.rowcount == 0:
                raise no_conversation(conversation_id)

    # -- messages ------------------------------------------------------------------------

    def add_message(
        self, conversation_id: str, role: str, content: str, *, parent_id: Parent = ACTIVE_LEAF
    ) -> int:
        """Store a user or system message (committed when this returns) and return its
        id.  It follows ``parent_id`` (default: the active leaf; None: a new root) and
        becomes the active leaf.  The first user message titles a conversation created
        without a title."""
        if role not in ("user", "system"):
            raise ValueError(f"add_message stores user and system messages, not {role!r}")
        content = _clean_text(content)
        now = _now()

        def run(db: sqlite3.Connection, resolve: Resolve) -> int:
            message_id = self._insert(
                db, resolve, conversation_id, parent_id, role, content, "complete", now
            )
            if role == "user":
                db.execute(
                    "UPDATE conversations SET title = ? WHERE id = ? AND title = ''",
                    (make_title(content), conversation_id),
                )
            return message_id

        record = {"kind": "message", "conversation": conversation_id, "role": role,
                  "text": content, "parent": _parent_record(parent_id), "at": now}  # fmt: skip
        return self._save_row("save a message", run, record)

    def begin_answer(
        self,
        conversation_id: str,
        *,
        profile: str | None = None,
        model: str | None = None,
        parent_id: Parent = ACTIVE_LEAF,
    ) -> int:
        """Create the row of an answer about to stream (status ``streaming``), after
        ``parent_id`` (default: the active leaf), and make it the active leaf."""
        now = _now()

        def run(db: sqlite3.Connection, resolve: Resolve) -> int:
            message_id = self._insert(
                db, resolve, conversation_id, parent_id, "assistant", "", "streaming", now,
                profile, model,
            )  # fmt: skip
            self._live.add(message_id)
            return message_id

        record = {"kind": "answer", "conversation": conversation_id, "model": model,
                  "parent": _parent_record(parent_id), "at": now}  # fmt: skip
        return self._save_row("save an answer", run, record)

    def record_answer(
        self,
        conversation_id: str,
        *,
        profile: str | None = None,
        model: str | None = None,
        interval: float = 1.0,
        parent_id: Parent = ACTIVE_LEAF,
    ) -> AnswerRecorder:
        """:meth:`begin_answer` wrapped in an :class:`AnswerRecorder`."""
        message_id = self.begin_answer(
            conversation_id, profile=profile, model=model, parent_id=parent_id
        )
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
        """Delete one message (missing ids are ignored).  Its children follow its parent
        instead; the active leaf, if it was this message, moves to the parent."""
        with self._write("delete a message") as db:
            message_id = self._resolve(message_id)
            row = db.execute(
                "SELECT conversation_id, parent_id FROM messages WHERE id = ?", (message_id,)
            ).fetchone()
            if row is not None:
                conversation_id, parent = row
                db.execute(
                    "UPDATE messages SET parent_id = ? WHERE parent_id = ?", (parent, message_id)
                )
                db.execute("DELETE FROM messages WHERE id = ?", (message_id,))
                db.execute(
                    "UPDATE conversations SET active_leaf = ? WHERE id = ? AND active_leaf = ?",
                    (parent, conversation_id, message_id),
                )
            self._live.discard(message_id)

    def truncate_after(
        self, conversation_id: str, message_id: int, *, inclusive: bool = False
    ) -> int:
        """Delete what follows ``message_id`` (every message below it in the tree; in a
        straight conversation, the messages after it) and the message itself when
        ``inclusive``; return how many were deleted.  If the active leaf was deleted, it
        moves to the message before the cut.

        Regenerate the last answer: ``truncate_after(cid, last_answer_id, inclusive=True)``.
        Edit and resend the last prompt: ``truncate_after(cid, last_prompt_id,
        inclusive=True)``, then :meth:`add_message` with the new text."""
        with self._write("delete messages") as db:
            message_id = self._resolve(message_id)
            row = db.execute(
                "SELECT parent_id FROM messages WHERE id = ? AND conversation_id = ?",
                (message_id, conversation_id),
            ).fetchone()
            if row is None:
                return 0
            return self._cut(db, conversation_id, message_id, row[0] if inclusive else message_id)

    def truncate(self, conversation_id: str, *, keep: int) -> int:
        """Keep the first ``keep`` messages of the active branch (every role and status
        counted) and delete what follows them; return how many were deleted."""
        with self._write("delete messages") as db:
            leaf = self._leaf(db, conversation_id)
            branch = [] if leaf is None else [row[0] for row in self._branch_rows(db, leaf)]
            if keep >= len(branch):
                return 0
            if keep <= 0:
                return self._cut(db, conversation_id, branch[0], None)
            return self._cut(db, conversation_id, branch[keep - 1], branch[keep - 1])

    def _cut(
        self, db: sqlite3.Connection, conversation_id: str, message_id: int, keep: int | None
    ) -> int:
        """Delete ``message_id`` and its descendants, except ``keep`` (``message_id``
        itself, or its parent); the active leaf moves to ``keep`` if it was deleted."""
        ids = json.dumps([i for i in self._subtree(db, message_id) if i != keep])
        cursor = db.execute(
            "DELETE FROM messages WHERE id IN (SELECT value FROM json_each(?))", (ids,)
        )
        db.execute(
            "UPDATE conversations SET active_leaf = ? WHERE id = ? AND active_leaf IN"
            " (SELECT value FROM json_each(?))",
            (keep, conversation_id, ids),
        )
        self._live.difference_update(json.loads(ids))
        return int(cursor.rowcount)

    def _insert(
        self,
        db: sqlite3.Connection,
        resolve: Resolve,
        conversation_id: str,
        parent_id: Parent,
        role: str,
        content: str,
        status: str,
        now: str,
        profile: str | None = None,
        model: str | None = None,
    ) -> int:
        """Insert a message after its parent (resolved now: a queued write follows the
        leaf its predecessors left) and make it the active leaf."""
        if (
            db.execute(
                "UPDATE conversations SET updated_at = ? WHERE id = ?", (now, conversation_id)
            ).rowcount
            == 0
        ):
            raise no_conversation(conversation_id)
        if parent_id is ACTIVE_LEAF:
            parent = self._leaf(db, conversation_id)
        elif parent_id is None:
            parent = None
        else:
            parent = resolve(parent_id)
            self._check_member(db, conversation_id, parent)
        cursor = db.execute(
            "INSERT INTO messages (conversation_id, role, content, status, profile, model,"
            " created_at, updated_at, parent_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (conversation_id, role, content, status, profile, model, now, now, parent),
        )
        assert cursor.lastrowid is not None
        message_id = int(cursor.lastrowid)
        db.execute(
            "UPDATE conversations SET active_leaf = ? WHERE id = ?", (message_id, conversation_id)
        )
        return message_id


def _parent_record(parent_id: Parent) -> int | str | None:
    """A new message's parent as the rescue file names it."""
    return "active leaf" if parent_id is ACTIVE_LEAF else parent_id
