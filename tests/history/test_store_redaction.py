"""Secrets never reach the history file: answers, errors, titles and conversation settings
are redacted."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tokentide import redact
from tokentide.history.settings import ConversationSettings
from tokentide.history.store import HistoryStore

KEY = "tt-registered-secret-0123456789abcdef"
BEARER = "Bearer eyJhbGciOiJIUzI1NiJ9.c2VjcmV0LXRva2VuLXZhbHVl.abcdefghijklmnop"


@pytest.fixture
def secret() -> Iterator[str]:
    redact.register_secret(KEY)
    yield KEY
    redact._forget_secrets()


def test_secrets_are_masked_before_they_are_stored(
    store: HistoryStore, db_path: Path, secret: str
) -> None:
    cid = store.create_conversation(title=f"key {secret}")
    store.add_message(cid, "user", f"my key is {secret}")
    answer = store.begin_answer(cid)
    store.checkpoint_answer(answer, f"echo {secret}")
    store.finish_answer(
        answer,
        f"the server said {secret}",
        status="error",
        error=f"401: invalid key {secret}; Authorization: {BEARER}",
        reasoning=f"thinking about {secret}",
    )
    store.rename(cid, f"renamed {secret}")
    store.set_settings(cid, ConversationSettings(system_prompt=f"use {secret}", model=secret))
    wal = Path(f"{db_path}-wal")
    raw = db_path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")
    assert secret.encode() not in raw
    assert b"eyJhbGciOiJIUzI1NiJ9" not in raw
    text = repr(store.load(cid))
    assert secret not in text
    assert "eyJhbGciOiJIUzI1NiJ9" not in text
    assert redact.MASK in text
