"""A conversation in memory: every message as a :class:`Turn`, linked to its parent,
and the branch on screen (the path from a root to the active leaf).

The tree mirrors the history store's (schema 4) when there is one, with the same ids;
without a store, ids are handed out here.  A turn is frozen: a finished answer replaces
its streaming placeholder.  A turn's parent is in the tree before it is, so
there are no cycles.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import EllipsisType
from typing import Any, Literal

from tokentide.backends.base import Message
from tokentide.chat.parts import (
    NodePart,
    Part,
    ReasoningPart,
    TokensPart,
    ToolCallPart,
    ToolResultPart,
    content_of,
    from_stored,
    round_pairs,
    tool_rounds,
    wire_messages,
)

__all__ = ["LOCAL_IDS", "ConversationTree", "Role", "Turn", "carried_messages", "is_local"]

LOCAL_IDS = -(2**40)
"""Ids of turns the store does not hold are at or below this: far from the store's row
ids (positive) and from the ids it hands out for writes it queues (-1, -2, ...)."""


def is_local(turn_id: int | None) -> bool:
    """Whether a turn exists only in memory (never to be named to the store)."""
    return turn_id is not None and turn_id <= LOCAL_IDS


Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True, slots=True)
class Turn:
    """One message of the conversation."""

    id: int
    parent_id: int | None
    role: Role
    parts: tuple[Part, ...]
    status: str = "complete"
    """``complete``; for answers also ``streaming``, ``stopped``, ``error`` or
    ``incomplete`` (left unfinished by a process that died)."""
    profile: str | None = None
    model: str | None = None
    finish_reason: str | None = None
    error: str | None = None
    stats: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def saved(cls, message: Any) -> Turn:
        """From a :class:`~tokentide.history.records.StoredMessage`."""
        role: Role = "user"
        if message.role in ("system", "assistant"):
            role = "system" if message.role == "system" else "assistant"
        return cls(
            id=message.id,
            parent_id=message.parent_id,
            role=role,
            parts=from_stored(
                message.content,
                message.reasoning,
                message.details.as_dict() if message.details else None,
            ),
            status=message.status or "complete",
            profile=message.profile,
            model=message.model,
            finish_reason=message.finish_reason,
            error=message.error,
            stats=dict(message.stats or {}),
        )

    @property
    def content(self) -> str:
        """The message as a request carries it."""
        return content_of(self.parts)

    @property
    def text(self) -> str:
        """The text outside any node (an answer that called tools: each round's text
        a paragraph of its own)."""
        return content_of([p for p in self.parts if not isinstance(p, NodePart)])

    @property
    def tool_calls(self) -> list[tuple[ToolCallPart, ToolResultPart | None]]:
        """Each tool call of the answer with its result (None: it never got one),
        paired round by round (servers reuse ids across rounds)."""
        return [
            pair
            for _text, calls, results in tool_rounds(self.parts)
            for pair in round_pairs(calls, results)
        ]

    @property
    def reasoning(self) -> str:
        return "".join(p.text for p in self.parts if isinstance(p, ReasoningPart))

    @property
    def tokens(self) -> tuple[tuple[str, float | None], ...]:
        return next((p.tokens for p in self.parts if isinstance(p, TokensPart)), ())

    @property
    def nodes(self) -> list[tuple[str, str]]:
        return [(p.node, p.text) for p in self.parts if isinstance(p, NodePart)]

    @property
    def failed_empty(self) -> bool:
        """A failed answer with nothing in it (shown as an error note on its prompt)."""
        return self.role == "assistant" and self.status == "error" and not self.content

    @property
    def carried(self) -> bool:
        """Whether a request carries this turn (empty answers are left out)."""
        return (
            self.role != "assistant"
            or bool(self.content)
            or any(isinstance(part, ToolCallPart) for part in self.parts)
        )


def carried_messages(turns: Iterable[Turn]) -> tuple[Message, ...]:
    """The turns as a request carries them: prompts and answers with something in
    them (a failed empty answer and system rows are left out; the system prompt comes
    from the settings).  An answer that called tools is carried as its rounds (see
    :func:`~tokentide.chat.parts.wire_messages`)."""
    messages: list[Message] = []
    for turn in turns:
        if not turn.carried:
            continue
        if turn.role == "user":
            messages.append(Message("user", turn.content))
        elif turn.role == "assistant":
            # An answer that called tools is its rounds: calls, results, then its text.
            messages.extend(wire_messages(turn.parts))
    return tuple(messages)


class ConversationTree:
    """Turns by id, children by parent, and the active leaf."""

    def __init__(self, turns: Iterable[Turn] = (), active_leaf: int | None = None) -> None:
        self._turns: dict[int, Turn] = {}
        self._children: dict[int | None, list[int]] = {}
        self._chosen: dict[int | None, int] = {}
        """The child last on screen under each parent (where a branch switch returns)."""
        self._next_local = LOCAL_IDS + 1
        for turn in turns:
            self.add(turn, activate=False)
        self.leaf: int | None = None
        if active_leaf in self._turns:
            self.activate(active_leaf)
        elif self._turns:
            self.activate(max(self._turns))

    def __len__(self) -> int:
        return len(self._turns)

    def __contains__(self, turn_id: object) -> bool:
        return turn_id in self._turns

    def __getitem__(self, turn_id: int) -> Turn:
        return self._turns[turn_id]

    def local_id(self) -> int:
        """A fresh id for a turn the store does not hold (see :data:`LOCAL_IDS`)."""
        self._next_local -= 1
        return self._next_local

    # -- changes --------------------------------------------------------------------------

    def add(self, turn: Turn, *, activate: bool = True) -> Turn:
        """Add a turn under its parent (a parent unknown here makes it a root)."""
        parent = turn.parent_id if turn.parent_id in self._turns else None
        if parent != turn.parent_id:
            turn = replace(turn, parent_id=parent)
        self._turns[turn.id] = turn
        self._children.setdefault(parent, []).append(turn.id)
        if activate:
            self.activate(turn.id)
        return turn

    def replace(self, turn: Turn) -> None:
        """A new state of a turn already in the tree (same id and parent)."""
        old = self._turns[turn.id]
        self._turns[turn.id] = replace(turn, parent_id=old.parent_id)

    def remove(self, turn_id: int) -> list[int]:
        """Remove a turn and everything below it; return the removed ids.  The active
        leaf, if removed, moves to the turn's parent."""
        if turn_id not in self._turns:
            return []
        removed, stack = [], [turn_id]
        while stack:
            current = stack.pop()
            removed.append(current)
            stack.extend(self._children.pop(current, []))
        parent = self._turns[turn_id].parent_id
        self._children[parent] = [c for c in self._children.get(parent, []) if c != turn_id]
        if self._chosen.get(parent) == turn_id:
            del self._chosen[parent]
        for gone in removed:
            del self._turns[gone]
            self._chosen.pop(gone, None)
        if self.leaf in removed:
            self.leaf = None
            if parent is not None:
                self.activate(parent)
        return removed

    def activate(self, turn_id: int | None) -> None:
        """Put the branch ending at ``turn_id`` on screen (None: an empty branch)."""
        self.leaf = turn_id
        current = turn_id
        while current is not None:
            parent = self._turns[current].parent_id
            self._chosen[parent] = current
            current = parent

    # -- reads ----------------------------------------------------------------------------

    def branch(self, leaf: int | EllipsisType | None = ...) -> list[Turn]:
        """The turns from the root down to ``leaf`` (default: the active leaf)."""
        current = self.leaf if leaf is ... else leaf
        path: list[Turn] = []
        seen: set[int] = set()
        while isinstance(current, int) and current in self._turns and current not in seen:
            seen.add(current)
            turn = self._turns[current]
            path.append(turn)
            current = turn.parent_id
        path.reverse()
        return path

    def children(self, turn_id: int | None) -> list[Turn]:
        """The turns under ``turn_id`` (None: the roots), oldest first."""
        return [self._turns[c] for c in self._children.get(turn_id, [])]

    def siblings(self, turn_id: int) -> tuple[int, int]:
        """``(position, count)`` of a turn among its parent's children, from 1."""
        family = self._children.get(self._turns[turn_id].parent_id, [])
        return family.index(turn_id) + 1, len(family)

    def sibling(self, turn_id: int, step: int) -> int | None:
        """The id ``step`` places along from ``turn_id`` among its siblings (None: none
        there)."""
        family = self._children.get(self._turns[turn_id].parent_id, [])
        index = family.index(turn_id) + step
        return family[index] if 0 <= index < len(family) else None

    def leaf_below(self, turn_id: int) -> int:
        """The leaf a branch switch to ``turn_id`` shows: down the children last on
        screen, else the newest."""
        current = turn_id
        while children := self._children.get(current):
            chosen = self._chosen.get(current)
            current = chosen if chosen in children else children[-1]
        return current
