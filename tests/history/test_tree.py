"""Schema 4: messages form a tree (each names its parent), a conversation shows the branch
ending at its active leaf, and keeps its own settings."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tests.history.conftest import query
from tests.history.test_busy import Locker
from tokentide.errors import HistoryError
from tokentide.history.export import to_dict
from tokentide.history.settings import ConversationSettings
from tokentide.history.store import HistoryStore


def _answer(store: HistoryStore, cid: str, text: str, **kwargs: int | None) -> int:
    answer = store.begin_answer(cid, **kwargs)  # type: ignore[arg-type]
    store.finish_answer(answer, text, status="complete")
    return answer


def _contents(store: HistoryStore, cid: str) -> list[str]:
    return [m.content for m in store.load(cid).messages]


def _two_answers(store: HistoryStore) -> tuple[str, int, int, int, int]:
    """q1 → a1 → q2 → a2, then a second answer to q2 (a sibling of a2)."""
    cid = store.create_conversation()
    q1 = store.add_message(cid, "user", "q1")
    a1 = _answer(store, cid, "a1")
    q2 = store.add_message(cid, "user", "q2")
    a2 = _answer(store, cid, "a2")
    a2b = _answer(store, cid, "a2 again", parent_id=q2)
    assert q1 < a1 < q2 < a2 < a2b
    return cid, a1, q2, a2, a2b


def test_new_messages_follow_the_active_leaf(store: HistoryStore) -> None:
    cid = store.create_conversation()
    assert store.load(cid).active_leaf is None
    system = store.add_message(cid, "system", "Be brief.")
    q1 = store.add_message(cid, "user", "q1")
    recorder = store.record_answer(cid, model="m")
    recorder.finish("complete", text="a1")
    conversation = store.load(cid)
    assert [(m.id, m.parent_id) for m in conversation.messages] == [
        (system, None),
        (q1, system),
        (recorder.message_id, q1),
    ]
    assert conversation.active_leaf == recorder.message_id
    assert store.roots(cid) == conversation.messages[:1]


def test_a_second_answer_is_a_sibling_and_becomes_the_branch_on_screen(
    store: HistoryStore,
) -> None:
    cid, _a1, q2, a2, a2b = _two_answers(store)
    assert _contents(store, cid) == ["q1", "a1", "q2", "a2 again"]
    assert [m.id for m in store.children(q2)] == [a2, a2b]
    assert store.children(a2b) == ()

    store.set_active_leaf(cid, a2)
    assert _contents(store, cid) == ["q1", "a1", "q2", "a2"]
    assert [m.content for m in store.branch(a2b)] == ["q1", "a1", "q2", "a2 again"]
    # The next message follows the branch on screen.
    q3 = store.add_message(cid, "user", "q3")
    assert store.branch(q3)[-2].id == a2
    assert store.load(cid).active_leaf == q3
    # A conversation's list entry counts every message of the tree.
    assert store.list_conversations()[0].message_count == 6


def test_editing_the_first_prompt_makes_a_second_root(store: HistoryStore) -> None:
    cid = store.create_conversation()
    first = store.add_message(cid, "user", "q1")
    _answer(store, cid, "a1")
    edited = store.add_message(cid, "user", "q1 edited", parent_id=None)
    assert _contents(store, cid) == ["q1 edited"]
    assert [m.id for m in store.roots(cid)] == [first, edited]
    assert store.load(cid).title == "q1"  # the title is the first prompt's


def test_a_parent_or_leaf_from_elsewhere_is_refused(store: HistoryStore, db_path: Path) -> None:
    mine = store.create_conversation()
    other = store.create_conversation()
    theirs = store.add_message(other, "user", "theirs")
    with pytest.raises(HistoryError, match="not part of conversation"):
        store.add_message(mine, "user", "here", parent_id=theirs)
    with pytest.raises(HistoryError, match="not part of conversation"):
        store.begin_answer(mine, parent_id=theirs)
    with pytest.raises(HistoryError, match="not part of conversation"):
        store.set_active_leaf(mine, theirs)
    with pytest.raises(HistoryError, match="not part of conversation"):
        store.set_active_leaf(mine, 10_000)
    with pytest.raises(HistoryError, match="No message"):
        store.branch(10_000)
    assert query(db_path, "SELECT count(*) FROM messages WHERE conversation_id = ?", [mine]) == [
        (0,)
    ]
    assert store.load(other).active_leaf == theirs


def test_truncate_after_cuts_the_branch_on_screen_and_keeps_the_others(
    store: HistoryStore,
) -> None:
    cid, a1, q2, a2, a2b = _two_answers(store)
    # Regenerate (as the app does today): the answer on screen goes, its sibling stays.
    assert store.truncate_after(cid, a2b, inclusive=True) == 1
    assert store.load(cid).active_leaf == q2  # the message before the cut
    assert [m.id for m in store.children(q2)] == [a2]
    a2c = _answer(store, cid, "a2 third")
    assert store.branch(a2c)[-2].id == q2
    # Edit the last prompt: it and everything below it (both answers) go.
    assert store.truncate_after(cid, q2, inclusive=True) == 3
    assert store.load(cid).active_leaf == a1
    assert _contents(store, cid) == ["q1", "a1"]
    # Not inclusive: the message stays and becomes the leaf.
    store.add_message(cid, "user", "q2 edited")
    assert store.truncate_after(cid, a1) == 1
    assert (store.load(cid).active_leaf, _contents(store, cid)) == (a1, ["q1", "a1"])
    # A message of another conversation cuts nothing.
    other = store.create_conversation()
    assert store.truncate_after(other, a1, inclusive=True) == 0
    assert _contents(store, cid) == ["q1", "a1"]


def test_truncate_keeps_a_count_of_the_active_branch(store: HistoryStore) -> None:
    cid, a1, _q2, a2, _a2b = _two_answers(store)
    store.set_active_leaf(cid, a2)
    assert store.truncate(cid, keep=5) == 0
    assert store.truncate(cid, keep=2) == 3  # q2 and both its answers
    assert (store.load(cid).active_leaf, _contents(store, cid)) == (a1, ["q1", "a1"])
    assert store.truncate(cid, keep=0) == 2
    assert (store.load(cid).active_leaf, _contents(store, cid)) == (None, [])
    store.add_message(cid, "user", "again")
    assert [m.parent_id for m in store.load(cid).messages] == [None]


def test_deleting_one_message_keeps_what_follows_it(store: HistoryStore) -> None:
    cid, a1, q2, a2, a2b = _two_answers(store)
    store.delete_message(q2)  # its answers now follow a1
    assert {m.id for m in store.children(a1)} == {a2, a2b}
    assert _contents(store, cid) == ["q1", "a1", "a2 again"]
    store.delete_message(a2b)  # the leaf: it moves to the parent
    assert store.load(cid).active_leaf == a1
    assert _contents(store, cid) == ["q1", "a1"]


def test_deleting_a_conversation_deletes_its_tree(store: HistoryStore, db_path: Path) -> None:
    cid, *_ = _two_answers(store)
    store.delete(cid)
    assert query(db_path, "SELECT count(*) FROM messages") == [(0,)]


def test_a_damaged_tree_still_loads(store: HistoryStore, db_path: Path) -> None:
    """A file edited by hand: a loop in the parents, a leaf naming nothing.  Walks only go
    to older messages, and a missing leaf falls back to the newest message."""
    cid, _a1, q2, _a2, a2b = _two_answers(store)
    db = sqlite3.connect(db_path, isolation_level=None)
    try:
        db.execute("UPDATE messages SET parent_id = ? WHERE id = ?", (a2b, q2))
        db.execute("UPDATE conversations SET active_leaf = 999999 WHERE id = ?", (cid,))
    finally:
        db.close()
    conversation = store.load(cid)
    assert conversation.active_leaf == a2b
    assert [m.content for m in conversation.messages] == ["q2", "a2 again"]


# -- settings -------------------------------------------------------------------------------


def test_settings_are_saved_per_conversation(db_path: Path) -> None:
    settings = ConversationSettings(
        system_prompt="Answer in French ✓", profile="work", model="m2", temperature=0.2,
        max_tokens=500, top_p=0.9, seed=42,
    )  # fmt: skip
    with HistoryStore.open(db_path) as store:
        cid = store.create_conversation()
        other = store.create_conversation()
        assert store.settings(cid) is None
        store.set_settings(cid, settings)
    with HistoryStore.open(db_path) as store:
        assert store.settings(cid) == settings
        assert store.load(cid).settings == settings
        assert store.load(other).settings is None
        store.set_settings(cid, ConversationSettings(temperature=1))
        assert store.settings(cid) == ConversationSettings(temperature=1)
        store.set_settings(cid, ConversationSettings())  # nothing set: the profile's
        assert query(db_path, "SELECT settings FROM conversations WHERE id = ?", [cid]) == [(None,)]
        store.set_settings(cid, settings)
        store.set_settings(cid, None)
        assert store.settings(cid) is None
        with pytest.raises(HistoryError, match="No conversation"):
            store.set_settings("nope", settings)
        with pytest.raises(HistoryError, match="No conversation"):
            store.settings("nope")


@pytest.mark.parametrize(
    "wrong",
    [
        {"temperature": float("nan")},
        {"temperature": "hot"},
        {"top_p": True},
        {"max_tokens": 0},
        {"max_tokens": 1.5},
        {"seed": "7"},
        {"model": 3},
    ],
)
def test_settings_of_the_wrong_type_are_refused(wrong: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="conversation settings"):
        ConversationSettings(**wrong)  # type: ignore[arg-type]


def test_damaged_settings_load_field_by_field(store: HistoryStore, db_path: Path) -> None:
    cid = store.create_conversation()
    db = sqlite3.connect(db_path, isolation_level=None)
    try:
        for text, expected in [
            ("not json", None),
            ("[1, 2]", None),
            ('{"seed": "x", "model": "m", "colour": "red"}', ConversationSettings(model="m")),
            ('{"temperature": 0.5, "max_tokens": -1}', ConversationSettings(temperature=0.5)),
        ]:
            db.execute("UPDATE conversations SET settings = ? WHERE id = ?", (text, cid))
            assert store.settings(cid) == expected, text
    finally:
        db.close()


def test_json_export_has_parents_leaf_and_settings(store: HistoryStore) -> None:
    cid, a1, q2, _a2, a2b = _two_answers(store)
    store.set_settings(cid, ConversationSettings(model="m2", seed=1))
    exported = json.loads(json.dumps(to_dict(store.load(cid))))
    assert exported["version"] == 4
    assert exported["active_leaf"] == a2b
    assert exported["settings"] == {"model": "m2", "seed": 1}
    assert [(m["content"], m["parent_id"]) for m in exported["messages"]] == [
        ("q1", None),
        ("a1", exported["messages"][0]["id"]),
        ("q2", a1),
        ("a2 again", q2),
    ]


# -- writes that wait for another process's lock ---------------------------------------------


def test_queued_writes_keep_parents_and_leaf(tmp_path: Path) -> None:
    with HistoryStore.open(tmp_path / "h.sqlite3", busy_timeout=0.05) as store:
        cid = store.create_conversation()
        q1 = store.add_message(cid, "user", "q1")
        a1 = _answer(store, cid, "a1")
        locker = Locker(store.path)
        q2 = store.add_message(cid, "user", "q2")  # queued: provisional id
        first = store.record_answer(cid, interval=0)  # follows q2, still provisional
        first.append("first")
        first.finish("complete")
        second = store.record_answer(cid, parent_id=q2, interval=0)  # a sibling
        second.append("second")
        second.finish("stopped")
        store.set_active_leaf(cid, first.message_id)
        store.set_settings(cid, ConversationSettings(seed=3))
        assert q2 < 0 and first.message_id < 0 and second.message_id < 0
        assert store.pending == 9
        locker.release()
        assert store.flush_pending() == 0
        conversation = store.load(cid)
        assert [m.content for m in conversation.messages] == ["q1", "a1", "q2", "first"]
        real_q2 = conversation.messages[2].id
        assert conversation.messages[2].parent_id == a1
        assert [m.content for m in store.children(real_q2)] == ["first", "second"]
        assert conversation.settings == ConversationSettings(seed=3)
        assert store.branch(q1)[0].id == q1
        assert [m.content for m in store.branch(second.message_id)][-1] == "second"


def test_messages_gives_every_branch_parents_first(store: HistoryStore) -> None:
    cid = store.create_conversation()
    first = store.add_message(cid, "user", "one")
    answer = store.begin_answer(cid)
    second = store.begin_answer(cid, parent_id=first)  # a regenerated answer
    edited = store.add_message(cid, "user", "one, edited", parent_id=None)
    everything = store.messages(cid)
    assert [m.id for m in everything] == [first, answer, second, edited]
    assert [m.parent_id for m in everything] == [None, first, first, None]
    assert [m.id for m in store.load(cid).messages] == [edited]  # only the branch on screen
    with pytest.raises(HistoryError):
        store.messages("no-such-conversation")
