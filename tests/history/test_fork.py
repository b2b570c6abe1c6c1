"""``HistoryStore.fork``: a new conversation from the branch down to one message."""

from __future__ import annotations

import sqlite3
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from tests.history.conftest import query
from tokentide.errors import HistoryError
from tokentide.history.settings import ConversationSettings
from tokentide.history.store import HistoryStore, StoredMessage

SETTINGS = ConversationSettings(system_prompt="Be brief.", model="m2", top_p=0.9, max_tokens=64)


def _tree(store: HistoryStore) -> tuple[str, list[int]]:
    """system, q1, a1 (reasoning, details, stats), a1b (a sibling of a1), q2 after a1,
    a2 (an error) after q2; the active leaf is a1b."""
    cid = store.create_conversation(title="Trip planning", profile="work")
    store.set_settings(cid, SETTINGS)
    s = store.add_message(cid, "system", "You plan trips.")
    q1 = store.add_message(cid, "user", "Plan Kyoto")
    a1 = store.begin_answer(cid, profile="work", model="m1")
    store.finish_answer(
        a1,
        "Day 1: temples",
        status="complete",
        finish_reason="stop",
        stats={"tokens": 3, "ttft": 0.5},
        reasoning="thinking",
        details={"tokens": [("Day", -0.5)], "nodes": [("draft", "x")]},
    )
    q2 = store.add_message(cid, "user", "And Osaka?")
    a2 = store.begin_answer(cid, profile="work", model="m1")
    store.finish_answer(a2, "", status="error", error="HTTP 500")
    a1b = store.begin_answer(cid, profile="work", model="m1", parent_id=q1)
    store.finish_answer(a1b, "Other plan", status="stopped", finish_reason="length")
    return cid, [s, q1, a1, q2, a2, a1b]


def _fields(message: StoredMessage) -> dict[str, Any]:
    """Everything a copy keeps (not its id, conversation or parent id)."""
    values = asdict(message)
    for key in ("id", "conversation_id", "parent_id"):
        del values[key]
    return values


def test_fork_of_a_middle_message_copies_the_branch_down_to_it(store: HistoryStore) -> None:
    cid, (s, q1, a1, q2, a2, a1b) = _tree(store)
    before = store.messages(cid)
    fork = store.fork(cid, q2)
    assert fork != cid
    conversation = store.load(fork)
    copies = conversation.messages
    originals = [m for m in before if m.id in (s, q1, a1, q2)]
    assert [_fields(c) for c in copies] == [_fields(o) for o in originals]  # every field
    assert not {c.id for c in copies} & {m.id for m in before}  # copies, new ids
    assert [c.parent_id for c in copies] == [None, copies[0].id, copies[1].id, copies[2].id]
    assert {c.conversation_id for c in copies} == {fork}
    assert store.messages(fork) == copies  # nothing below q2, no sibling a1b
    assert conversation.active_leaf == copies[-1].id
    assert (conversation.title, conversation.profile) == ("Trip planning (fork)", "work")
    assert conversation.settings == SETTINGS
    assert copies[2].reasoning == "thinking" and copies[2].tokens == [("Day", -0.5)]
    # The original is untouched, its active leaf too.
    assert store.messages(cid) == before
    assert store.load(cid).active_leaf == a1b
    # The fork grows on its own.
    store.add_message(fork, "user", "Only in the fork")
    assert len(store.messages(cid)) == len(before)
    assert a2 not in {m.id for m in store.messages(fork)}


def test_fork_of_a_sibling_branch_and_a_title(store: HistoryStore) -> None:
    cid, (_s, _q1, _a1, _q2, _a2, a1b) = _tree(store)
    fork = store.fork(cid, a1b, title="  Plan  B\n ")
    conversation = store.load(fork)
    assert conversation.title == "Plan B"
    assert [m.content for m in conversation.messages] == [
        "You plan trips.",
        "Plan Kyoto",
        "Other plan",
    ]
    assert conversation.messages[-1].status == "stopped"


def test_fork_of_the_root_and_of_an_untitled_conversation(store: HistoryStore) -> None:
    cid = store.create_conversation()
    root = store.add_message(cid, "system", "only a system prompt")
    conversation = store.load(store.fork(cid, root))
    assert conversation.title == "Untitled conversation (fork)"
    assert [(m.content, m.parent_id) for m in conversation.messages] == [
        ("only a system prompt", None)
    ]
    assert conversation.settings is None and conversation.profile is None


def test_a_message_of_another_conversation_is_refused(store: HistoryStore, db_path: Path) -> None:
    cid, ids = _tree(store)
    other = store.create_conversation(title="Other")
    foreign = store.add_message(other, "user", "elsewhere")
    count = len(store.list_conversations())
    with pytest.raises(HistoryError, match="is not part of conversation"):
        store.fork(cid, foreign)
    with pytest.raises(HistoryError, match="is not part of conversation"):
        store.fork(cid, max(ids) + 100)
    with pytest.raises(HistoryError, match="No conversation 'nosuch'") as caught:
        store.fork("nosuch", ids[0])
    assert caught.value.exit_code == 2
    assert len(store.list_conversations()) == count


def test_fork_is_one_transaction(store: HistoryStore, db_path: Path) -> None:
    """A copy that fails in the database leaves no conversation and no copied message."""
    cid, (_s, _q1, _a1, q2, _a2, _a1b) = _tree(store)
    db = sqlite3.connect(db_path)
    db.execute(
        "CREATE TRIGGER poison BEFORE INSERT ON messages WHEN NEW.content = 'And Osaka?'"
        " BEGIN SELECT RAISE(ABORT, 'poisoned row'); END"
    )
    db.commit()
    db.close()
    before = (
        query(db_path, "SELECT count(*) FROM conversations"),
        query(db_path, "SELECT count(*) FROM messages"),
    )
    with pytest.raises(HistoryError, match="poisoned row"):
        store.fork(cid, q2)
    after = (
        query(db_path, "SELECT count(*) FROM conversations"),
        query(db_path, "SELECT count(*) FROM messages"),
    )
    assert after == before
