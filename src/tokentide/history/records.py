"""What the history store gives back: frozen records of conversations and messages."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tokentide.history.columns import TITLE_CHARS, make_title
from tokentide.history.settings import ConversationSettings

__all__ = [
    "TITLE_CHARS",
    "AnswerDetails",
    "Conversation",
    "ConversationSettings",
    "ConversationSummary",
    "StoredMessage",
    "make_title",
]


@dataclass(frozen=True, slots=True)
class AnswerDetails:
    """What an answer holds beyond its text: its tokens with their logprobs (natural
    log, None where the server sent none) and a multi-node answer's ``(node id, text)``
    blocks, in the order the nodes first spoke."""

    tokens: tuple[tuple[str, float | None], ...] = ()
    nodes: tuple[tuple[str, str], ...] = ()
    tools: tuple[Mapping[str, Any], ...] = ()
    """An answer that called tools: one ``{text, calls, results}`` per round, as stored
    (see :func:`tokentide.chat.parts.stored_fields`)."""

    @classmethod
    def from_dict(cls, value: Mapping[str, Any] | None) -> AnswerDetails | None:
        """From the stored shape ``{"tokens": [[text, logprob], ...], "nodes": [[node,
        text], ...]}`` (already checked: see ``columns._details_dict``); None when empty."""
        if not value:
            return None
        tokens = tuple(
            (str(t), None if lp is None else float(lp)) for t, lp in value.get("tokens", ())
        )
        nodes = tuple((str(n), str(t)) for n, t in value.get("nodes", ()))
        tools = tuple(value.get("tools", ()))
        return cls(tokens, nodes, tools) if tokens or nodes or tools else None

    def as_dict(self) -> dict[str, Any]:
        """The stored (and exported) shape: only the keys that hold something."""
        shape: dict[str, Any] = {}
        if self.tokens:
            shape["tokens"] = [[text, logprob] for text, logprob in self.tokens]
        if self.nodes:
            shape["nodes"] = [[node, text] for node, text in self.nodes]
        if self.tools:
            shape["tools"] = [dict(r) for r in self.tools]
        return shape


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """One saved message.

    ``status`` is ``complete`` for user and system messages; for answers it is
    ``complete``, ``stopped``, ``error``, ``streaming`` (being written by this store
    right now) or ``incomplete`` (left ``streaming`` by a process that died, or being
    written by another tide process).

    ``content`` is the answer as the next request carries it (for a multi-node answer,
    each node's text under its name in bold).  ``reasoning`` is the model's reasoning,
    exactly as received (None when there was none).  ``details`` is None or the
    answer's :class:`AnswerDetails` (per-token logprobs, a multi-node answer's blocks).

    ``parent_id`` is the message this one answers or follows (None for the first of a
    conversation): messages form a tree, one branch of which is on screen.
    """

    id: int
    conversation_id: str
    role: str
    content: str
    status: str
    finish_reason: str | None
    error: str | None
    stats: dict[str, float | int | str | None]
    profile: str | None
    model: str | None
    created_at: datetime
    updated_at: datetime
    reasoning: str | None = None
    details: AnswerDetails | None = None
    parent_id: int | None = None

    @property
    def tokens(self) -> list[tuple[str, float | None]]:
        """The answer's tokens with their logprobs (empty when not saved)."""
        return list(self.details.tokens) if self.details else []

    @property
    def nodes(self) -> list[tuple[str, str]]:
        """A multi-node answer's ``(node id, text)`` pairs (empty for other answers)."""
        return list(self.details.nodes) if self.details else []


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
    """The active branch, root first (the messages a request carries)."""
    active_leaf: int | None = None
    """The message at the tip of the active branch (None: no message yet)."""
    settings: ConversationSettings | None = None
    """The conversation's own settings (None: its profile's)."""

    @property
    def message_count(self) -> int:
        return len(self.messages)
