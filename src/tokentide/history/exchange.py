"""Saving a whole exchange (a prompt and its final answer) in one transaction.

:class:`ExchangeLog` is what ``tide ask`` opens after the answer is written: the same
file, schema, lock handling and rescue file as
:class:`~tokentide.history.store.HistoryStore` (it is a
:class:`~tokentide.history.pending.QueuedWrites` too), without the reading side (records,
the tree, settings), whose imports would cost every one-shot answer several
milliseconds (docs/performance.md, "`tide ask` remembers").
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from tokentide.errors import HistoryError
from tokentide.history.columns import (
    _clean_error,
    _clean_text,
    _details_json,
    _now,
    _stats_json,
    make_title,
    new_id,
)
from tokentide.history.pending import QueuedWrites, Resolve

if TYPE_CHECKING:
    from tokentide.history.settings import ConversationSettings

__all__ = ["MODEL_CHARS", "ExchangeLog"]

MODEL_CHARS: Final = 200
"""Longest model name kept (a server may send anything there)."""
_FINAL: Final = frozenset({"complete", "stopped", "error"})
_INSERT: Final = (
    "INSERT INTO messages (conversation_id, role, content, status, profile, model,"
    " created_at, updated_at, parent_id, finish_reason, error, stats, reasoning, details)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


class ExchangeLog(QueuedWrites):
    """Writes whole exchanges.  Open with :meth:`open`, close with :meth:`close` (which
    writes what another process's lock kept out to a rescue file: :attr:`rescued`)."""

    def add_exchange(
        self,
        prompt: str,
        answer: str | None,
        *,
        status: str = "complete",
        conversation_id: str | None = None,
        parent_id: int | None = None,
        profile: str | None = None,
        model: str | None = None,
        finish_reason: str | None = None,
        error: str | None = None,
        stats: Mapping[str, float | int | str | None] | None = None,
        reasoning: str | None = None,
        settings: ConversationSettings | None = None,
        details: Mapping[str, Any] | None = None,
        title: str | None = None,
    ) -> str:
        """Save ``prompt`` after ``parent_id`` (None: a root) and its ``answer`` (None: no
        answer row, e.g. stopped before anything arrived) with its outcome (``complete``,
        ``stopped`` or ``error``); the answer becomes the active leaf.  Without a
        ``conversation_id``, a new conversation titled by the prompt, with ``settings``
        as its own, titled by ``title`` (default: the prompt).  Return the
        conversation's id.  Queued, and rescued on :meth:`close`,
        like the store's writes while another process holds the lock."""
        if answer is not None and status not in _FINAL:
            raise ValueError(f"an answer is complete, stopped or error, not {status!r}")
        new = conversation_id is None
        cid = new_id() if conversation_id is None else conversation_id
        now = _now()
        text = _clean_text(prompt)
        title = _clean_text(make_title(prompt if title is None else title))
        reply = None if answer is None else _clean_text(answer)
        problem = None if error is None else _clean_error(error)
        served = None if model is None else _clean_text(model)[:MODEL_CHARS]
        thoughts = _clean_text(reasoning) if reasoning else None
        own = None
        if settings is not None:
            from tokentide.history.settings import _settings_json

            own = _settings_json(settings.cleaned(_clean_text))
        figures = _stats_json(stats)
        more = _details_json(details)  # ValueError for a shape the store does not keep

        def run(db: sqlite3.Connection, _resolve: Resolve) -> int:
            if new:
                db.execute(
                    "INSERT INTO conversations (id, title, profile, created_at, updated_at,"
                    " settings) VALUES (?, ?, ?, ?, ?, ?)",
                    (cid, title, profile, now, now, own),
                )
            elif not db.execute(
                "UPDATE conversations SET updated_at = ?, title = CASE title WHEN '' THEN ?"
                " ELSE title END WHERE id = ?",
                (now, title, cid),
            ).rowcount:
                raise HistoryError(f"No conversation {cid!r} in the history (deleted?).")
            if parent_id is not None:
                row = db.execute(
                    "SELECT conversation_id FROM messages WHERE id = ?", (parent_id,)
                ).fetchone()
                if row is None or row[0] != cid:
                    raise HistoryError(f"Message {parent_id} is not part of conversation {cid!r}.")
            leaf = db.execute(
                _INSERT,
                (cid, "user", text, "complete", None, None, now, now, parent_id,
                 None, None, None, None, None),
            ).lastrowid  # fmt: skip
            if reply is not None:
                leaf = db.execute(
                    _INSERT,
                    (cid, "assistant", reply, status, profile, served, now, now, leaf,
                     finish_reason, problem, figures, thoughts, more),
                ).lastrowid  # fmt: skip
            db.execute("UPDATE conversations SET active_leaf = ? WHERE id = ?", (leaf, cid))
            assert leaf is not None
            return int(leaf)

        record = {"kind": "exchange", "conversation": cid, "new": new, "title": title,
                  "parent": parent_id, "prompt": text, "answer": reply, "status": status,
                  "error": problem, "model": served, "at": now}  # fmt: skip
        self._save_row("save the exchange", run, record)
        return cid
