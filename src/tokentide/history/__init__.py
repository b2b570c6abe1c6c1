"""Saved conversations: the SQLite store (:mod:`.store`) and ``tide history`` (:mod:`.cli`)."""

from __future__ import annotations

from tokentide.history.store import (
    AnswerRecorder,
    Conversation,
    ConversationSettings,
    ConversationSummary,
    HistoryStore,
    StoredMessage,
)

__all__ = [
    "AnswerRecorder",
    "Conversation",
    "ConversationSettings",
    "ConversationSummary",
    "HistoryStore",
    "StoredMessage",
]
