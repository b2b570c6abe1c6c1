"""Finding a conversation by id prefix, and opening the history only if it exists.

Without typer (``tide ask -c``/``--conversation`` reads it on the one-shot path, and
``tide chat --conversation`` before Textual); ``tide history`` (:mod:`.cli`) gives the
same messages from here.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from tokentide.errors import HistoryError, UsageError

if TYPE_CHECKING:
    from tokentide.history.store import HistoryStore

__all__ = ["open_existing", "resolve_conversation", "resolve_id"]

_SHOWN_CANDIDATES = 5


def _db_path() -> Path:
    from tokentide.config.paths import data_dir
    from tokentide.history.store import DB_NAME

    return data_dir() / DB_NAME


def open_existing(*, write: bool = False) -> HistoryStore | None:
    """The store, or ``None`` when no history file exists yet (read-only commands do not
    create one).  Reading commands open a file they may not write (a read-only data dir)
    read-only; where they may, it is opened as usual, so an older schema is upgraded."""
    from tokentide.history.store import HistoryStore

    path = _db_path()
    if not path.exists():
        return None
    writable = os.access(path, os.W_OK) and os.access(path.parent, os.W_OK | os.X_OK)
    return HistoryStore.open(path, read_only=not write and not writable)


def resolve_id(store: HistoryStore, prefix: str) -> str:
    """The full id of the one conversation whose id starts with ``prefix``.

    No conversation: exit 2; an empty or ambiguous prefix: a :class:`UsageError` (exit
    2), the ambiguous one listing the ids it could mean, newest first.
    """
    from tokentide.sanitize import sanitize_title

    wanted = prefix.strip().lower()
    if not wanted:
        raise UsageError(
            "No conversation id given.", hint="`tide history list` shows the saved conversations."
        )
    try:
        return store.resolve(wanted)
    except HistoryError as error:
        if error.exit_code == 2:  # no such conversation: already a usage error
            raise
        candidates = [
            c for c in store.list_conversations(limit=1_000_000) if c.id.startswith(wanted)
        ]
        if len(candidates) < 2:  # not an ambiguity (a busy or broken store): as it was
            raise
    shown = ", ".join(
        f"{c.id} ({sanitize_title(c.title or 'Untitled conversation', limit=30)})"
        for c in candidates[:_SHOWN_CANDIDATES]
    )
    more = len(candidates) - _SHOWN_CANDIDATES
    raise UsageError(
        f"{len(candidates)} conversation ids start with {wanted!r}: {shown}"
        + (f" and {more} more." if more > 0 else "."),
        hint="Give more characters of the id (`tide history list` shows them).",
    )


def resolve_conversation(prefix: str) -> str:
    """:func:`resolve_id` against the history in the data dir (read-only; none yet is
    "no conversation")."""
    store = open_existing()
    if store is None:
        from tokentide.history.tree import no_conversation

        raise no_conversation(prefix)
    try:
        return resolve_id(store, prefix)
    finally:
        store.close()
