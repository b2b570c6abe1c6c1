"""Saved conversations: the SQLite store (:mod:`.store`) and ``tide history`` (:mod:`.cli`).

The names below are loaded from :mod:`.store` when first used, so that importing a
part of the package (``tide ask`` saves through :mod:`.exchange`) does not load the
whole store.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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


def __getattr__(name: str) -> Any:
    if name in __all__:
        from tokentide.history import store

        return getattr(store, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
