"""The history database schema and its migrations.

``PRAGMA user_version`` holds the schema version.  ``MIGRATIONS[n]`` takes a database
from version ``n`` to ``n + 1``; :mod:`tokentide.history.store` runs each one as a
single ``BEGIN IMMEDIATE`` transaction that also sets ``user_version``, so a crash
leaves the file exactly at the old or the new version.  A fresh database is built by
running every migration from version 0, so a new file and an upgraded one are the same.

Rules for adding a version: append a list of statements, never edit a shipped one (the
tests keep a frozen copy of every shipped schema and upgrade it), no ``IF NOT EXISTS``
(a re-run must fail loudly rather than half-apply), no statement that commits.
"""

from __future__ import annotations

__all__ = ["LATEST", "MIGRATIONS"]

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # 0 -> 1: conversations and their messages.
    (
        """
        CREATE TABLE conversations (
            id          TEXT PRIMARY KEY,
            title       TEXT NOT NULL,
            profile     TEXT,
            created_at  TEXT NOT NULL,
            updated_at  TEXT NOT NULL
        )
        """,
        """
        CREATE TABLE messages (
            id               INTEGER PRIMARY KEY AUTOINCREMENT,
            conversation_id  TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
            role             TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
            content          TEXT NOT NULL,
            status           TEXT NOT NULL
                             CHECK (status IN ('complete', 'streaming', 'stopped', 'error')),
            finish_reason    TEXT,
            error            TEXT,
            profile          TEXT,
            model            TEXT,
            created_at       TEXT NOT NULL,
            updated_at       TEXT NOT NULL
        )
        """,
    ),
    # 1 -> 2: generation statistics (JSON) per answer; indexes for the conversation list
    # (newest first) and for loading / deleting one conversation's messages.
    (
        "ALTER TABLE messages ADD COLUMN stats TEXT",
        "CREATE INDEX messages_by_conversation ON messages (conversation_id, id)",
        "CREATE INDEX conversations_by_update ON conversations (updated_at, id)",
    ),
    # 2 -> 3: what an answer holds beyond its text, so that reopening a conversation
    # shows what was received: the model's reasoning (exact text) and the details of
    # the answer (JSON: per-token logprobs, per-node texts of a multi-node answer).
    (
        "ALTER TABLE messages ADD COLUMN reasoning TEXT",
        "ALTER TABLE messages ADD COLUMN details TEXT",
    ),
    # 3 -> 4: conversations as trees.  Each message names the message it answers or
    # follows (NULL for the first); a conversation names the tip of the branch on screen
    # (``active_leaf``) and its own settings (JSON; NULL: the profile's).  Every existing
    # conversation becomes one straight branch: each message's parent is the message
    # before it in id order, the active leaf its last message.
    (
        "ALTER TABLE messages ADD COLUMN parent_id INTEGER REFERENCES messages(id)",
        "ALTER TABLE conversations ADD COLUMN active_leaf INTEGER",
        "ALTER TABLE conversations ADD COLUMN settings TEXT",
        """
        UPDATE messages SET parent_id = (
            SELECT max(p.id) FROM messages p
            WHERE p.conversation_id = messages.conversation_id AND p.id < messages.id
        )
        """,
        """
        UPDATE conversations SET active_leaf = (
            SELECT max(m.id) FROM messages m WHERE m.conversation_id = conversations.id
        )
        """,
        "CREATE INDEX messages_by_parent ON messages (parent_id)",
    ),
)

LATEST = len(MIGRATIONS)
"""The schema version this build writes."""
