"""Inserting messages into the tree, and a whole exchange (prompt and answer) at once.

:class:`Exchanges` sits between :class:`~tokentide.history.tree.MessageTree` and
:class:`~tokentide.history.store.HistoryStore`: it holds the one insert every new message
goes through, and :meth:`Exchanges.add_exchange`, which ``tide ask`` uses to save what
it printed in one transaction, after the answer is written (a one-shot run has no
screen to keep in step with the file, and one transaction keeps it fast).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from tokentide.history.columns import _clean_error, _clean_text, _now, _stats_json, new_id
from tokentide.history.pending import Resolve
from tokentide.history.records import make_title
from tokentide.history.settings import ConversationSettings, _settings_json
from tokentide.history.tree import ACTIVE_LEAF, MessageTree, Parent, _missing

__all__ = ["MODEL_CHARS", "Exchange", "Exchanges", "SavedExchange"]

MODEL_CHARS: Final = 200
"""Longest model name kept (a server may send anything there)."""
_FINAL: Final = frozenset({"complete", "stopped", "error"})


@dataclass(frozen=True, slots=True)
class Exchange:
    """One prompt and its answer, as ``tide ask`` saves them."""

    prompt: str
    answer: str | None
    """The answer's text; None: no answer row (stopped before anything arrived)."""
    status: str = "complete"
    """The answer's outcome: ``complete``, ``stopped`` or ``error``."""
    conversation_id: str | None = None
    """The conversation it continues; None: a new one, titled by the prompt."""
    parent_id: Parent = ACTIVE_LEAF
    """The prompt's parent (the leaf of the branch the request carried)."""
    profile: str | None = None
    model: str | None = None
    """The model that answered (the server's name for it, when it gave one)."""
    finish_reason: str | None = None
    error: str | None = None
    stats: Mapping[str, float | int | str | None] | None = None
    reasoning: str | None = None
    settings: ConversationSettings | None = None
    """A new conversation's own settings (e.g. the system prompt it was started with)."""


@dataclass(frozen=True, slots=True)
class SavedExchange:
    conversation_id: str
    prompt_id: int
    """The prompt's id (provisional, negative, while the write waits for a lock)."""


class Exchanges(MessageTree):
    """The insert of new messages, and whole exchanges."""

    def add_exchange(self, exchange: Exchange) -> SavedExchange:
        """Save a prompt and its final answer in one transaction (queued, and rescued on
        :meth:`close`, like the other conversation writes while another process holds
        the lock).  Both become the active branch's tip in turn."""
        if exchange.answer is not None and exchange.status not in _FINAL:
            raise ValueError(f"an answer is complete, stopped or error, not {exchange.status!r}")
        new = exchange.conversation_id is None
        conversation_id = new_id() if exchange.conversation_id is None else exchange.conversation_id
        now = _now()
        prompt = _clean_text(exchange.prompt)
        title = _clean_text(make_title(exchange.prompt))
        answer = None if exchange.answer is None else _clean_text(exchange.answer)
        error = None if exchange.error is None else _clean_error(exchange.error)
        settings = exchange.settings
        settings_json = None if settings is None else _settings_json(settings.cleaned(_clean_text))
        model = None if exchange.model is None else _clean_text(exchange.model)[:MODEL_CHARS]
        reasoning = _clean_text(exchange.reasoning) if exchange.reasoning else None
        stats = _stats_json(exchange.stats)

        def run(db: sqlite3.Connection, resolve: Resolve) -> int:
            if new:
                db.execute(
                    "INSERT INTO conversations (id, title, profile, created_at, updated_at,"
                    " settings) VALUES (?, ?, ?, ?, ?, ?)",
                    (conversation_id, title, exchange.profile, now, now, settings_json),
                )
            else:
                db.execute(
                    "UPDATE conversations SET title = ? WHERE id = ? AND title = ''",
                    (title, conversation_id),
                )
            prompt_id = self._insert(
                db, resolve, conversation_id, exchange.parent_id, "user", prompt, "complete", now
            )
            if answer is not None:
                answer_id = self._insert(
                    db, resolve, conversation_id, prompt_id, "assistant", answer,
                    exchange.status, now, exchange.profile, model,
                )  # fmt: skip
                db.execute(
                    "UPDATE messages SET finish_reason = ?, error = ?, stats = ?, reasoning = ?"
                    " WHERE id = ?",
                    (exchange.finish_reason, error, stats, reasoning, answer_id),
                )
            return prompt_id

        parent = exchange.parent_id
        record = {"kind": "exchange", "conversation": conversation_id, "new": new,
                  "title": title, "parent": "active leaf" if parent is ACTIVE_LEAF else parent,
                  "prompt": prompt, "answer": answer, "status": exchange.status,
                  "error": error, "model": model, "at": now}  # fmt: skip
        prompt_id = self._save_row("save the exchange", run, record)
        return SavedExchange(conversation_id, prompt_id)

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
            raise _missing(conversation_id)
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
