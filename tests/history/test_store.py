"""The history store's API on real SQLite files."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.history.conftest import integrity, make_db, query, without_root_override
from tokentide.errors import HistoryError
from tokentide.history.records import AnswerDetails
from tokentide.history.schema import LATEST
from tokentide.history.store import (
    AnswerRecorder,
    HistoryStore,
    answer_details,
    make_title,
    new_id,
)

# -- round trips ---------------------------------------------------------------------------


def test_a_conversation_round_trips(store: HistoryStore) -> None:
    cid = store.create_conversation(title="", profile="work")
    system = store.add_message(cid, "system", "Be brief.")
    user = store.add_message(cid, "user", "What is 2+2?\nExplain.")
    answer = store.begin_answer(cid, profile="work", model="m1")
    store.checkpoint_answer(answer, "It is")
    store.finish_answer(
        answer,
        "It is 4.",
        status="complete",
        finish_reason="stop",
        stats={"tokens": 5, "ttft_s": 0.25, "tokens_per_s": None},
    )

    conversation = store.load(cid)
    assert conversation.id == cid
    assert conversation.title == "What is 2+2?"
    assert conversation.profile == "work"
    assert conversation.created_at.tzinfo == UTC
    assert conversation.created_at <= conversation.updated_at
    assert [(m.id, m.role, m.content, m.status) for m in conversation.messages] == [
        (system, "system", "Be brief.", "complete"),
        (user, "user", "What is 2+2?\nExplain.", "complete"),
        (answer, "assistant", "It is 4.", "complete"),
    ]
    last = conversation.messages[-1]
    assert (last.finish_reason, last.error, last.profile, last.model) == (
        "stop",
        None,
        "work",
        "m1",
    )
    assert last.stats == {"tokens": 5, "ttft_s": 0.25, "tokens_per_s": None}
    assert [m.id for m in conversation.messages] == sorted(m.id for m in conversation.messages)


def test_stopped_and_failed_answers_keep_their_outcome(store: HistoryStore) -> None:
    cid = store.create_conversation(title="t")
    store.add_message(cid, "user", "q")
    stopped = store.begin_answer(cid, profile=None, model=None)
    store.finish_answer(stopped, "partial", status="stopped", stats={"x": float("inf")})
    store.add_message(cid, "user", "q2")
    failed = store.begin_answer(cid, profile=None, model=None)
    store.finish_answer(failed, "", status="error", error="HTTP 500 from http://x")

    by_id = {m.id: m for m in store.load(cid).messages}
    assert (by_id[stopped].status, by_id[stopped].content) == ("stopped", "partial")
    assert by_id[stopped].stats == {"x": None}  # non-finite numbers are not stored
    assert (by_id[failed].status, by_id[failed].error) == ("error", "HTTP 500 from http://x")
    with pytest.raises(ValueError):
        store.finish_answer(failed, "", status="streaming")
    with pytest.raises(ValueError):
        store.add_message(cid, "assistant", "not this way")


def test_the_model_the_server_named_replaces_none_but_none_keeps_the_profiles(
    store: HistoryStore,
) -> None:
    from tokentide.history.export import to_dict

    cid = store.create_conversation(title="t")
    store.add_message(cid, "user", "q")
    named = store.begin_answer(cid, profile="p", model=None)
    store.finish_answer(named, "a", status="complete", model="served-model-2024\x1b[2J")
    store.add_message(cid, "user", "q2")
    kept = store.begin_answer(cid, profile="p", model="from-profile")
    store.finish_answer(kept, "b", status="complete", model=None)
    by_id = {m.id: m for m in store.load(cid).messages}
    assert by_id[named].model == "served-model-2024\x1b[2J"  # kept raw; shown sanitised
    assert by_id[kept].model == "from-profile"
    exported = [m["model"] for m in to_dict(store.load(cid))["messages"]]
    assert exported == [None, "served-model-2024\x1b[2J", None, "from-profile"]


def test_a_store_reopens_with_everything(db_path: Path) -> None:
    with HistoryStore.open(db_path) as first:
        cid = first.create_conversation(title="Persisted")
        first.add_message(cid, "user", "hello")
    with HistoryStore.open(db_path) as second:
        assert [m.content for m in second.load(cid).messages] == ["hello"]
        assert second.last_conversation_id() == cid


_texts = st.text(st.characters(codec="utf-8"), max_size=300)  # any Unicode scalar, NUL too


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HistoryStore]:
    s = HistoryStore.open(tmp_path_factory.mktemp("unicode") / "h.sqlite3")
    try:
        yield s
    finally:
        s.close()


@given(content=_texts, pieces=st.lists(_texts, max_size=5))
def test_any_unicode_round_trips_exactly(
    shared: HistoryStore, content: str, pieces: list[str]
) -> None:
    store = shared
    cid = store.create_conversation(title=content)
    user = store.add_message(cid, "user", content)
    recorder = AnswerRecorder(store, store.begin_answer(cid), interval=0.0)
    for piece in pieces:
        recorder.append(piece)  # interval 0: every piece is a checkpoint (content || piece)
    streamed = {m.id: m.content for m in store.load(cid).messages}
    assert streamed[recorder.message_id] == "".join(pieces)
    recorder.finish("complete")
    conversation = store.load(cid)
    saved = {m.id: m.content for m in conversation.messages}
    assert saved[user] == content
    assert saved[recorder.message_id] == "".join(pieces)
    assert conversation.title == make_title(content)


def test_lone_surrogates_are_stored_as_replacement_characters(store: HistoryStore) -> None:
    cid = store.create_conversation(title="x")
    store.add_message(cid, "user", "a\ud800b")
    assert store.load(cid).messages[0].content == "a\ufffdb"


# -- titles, ids, ordering ---------------------------------------------------------------------


def test_titles_come_from_the_first_line_of_the_first_prompt() -> None:
    assert make_title("\n   Hello   there  \nsecond line") == "Hello there"
    long = "x" * 100
    assert len(make_title(long)) == 60 and make_title(long).endswith("…")
    assert make_title("") == ""


def test_a_given_title_is_normalised_and_renaming_replaces_it(store: HistoryStore) -> None:
    cid = store.create_conversation(title="first line\nsecond", profile=None)
    store.add_message(cid, "user", "something else")
    assert store.load(cid).title == "first line"
    store.rename(cid, "  My   chat ")
    store.add_message(cid, "user", "later prompt")
    assert store.load(cid).title == "My chat"
    with pytest.raises(HistoryError, match="No conversation"):
        store.rename("nope", "x")


def test_ids_are_short_unique_and_sortable() -> None:
    ids = [new_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)
    assert all(len(i) == 16 and i.isalnum() and i == i.lower() for i in ids)


def test_conversations_are_listed_most_recent_first(store: HistoryStore) -> None:
    a = store.create_conversation(title="a")
    b = store.create_conversation(title="b")
    c = store.create_conversation(title="c")
    assert [s.id for s in store.list_conversations()] == [c, b, a]
    store.add_message(a, "user", "bump")  # activity moves a to the top
    summaries = store.list_conversations()
    assert [s.id for s in summaries] == [a, c, b]
    assert [s.message_count for s in summaries] == [1, 0, 0]
    assert store.last_conversation_id() == a
    assert [s.id for s in store.list_conversations(limit=2)] == [a, c]


def test_search_matches_titles_and_message_text(store: HistoryStore) -> None:
    pasta = store.create_conversation(title="Cooking")
    store.add_message(pasta, "user", "How long to boil PASTA?")
    answer = store.begin_answer(pasta, profile=None, model=None)
    store.finish_answer(answer, "About 9 minutes; 100% al dente", status="complete")
    other = store.create_conversation(title="Rust lifetimes")
    store.add_message(other, "user", "explain 'a")

    def found(q: str) -> list[str]:
        return [s.id for s in store.list_conversations(search=q)]

    assert found("pasta") == [pasta]  # message text, ASCII case-insensitive
    assert found("minutes") == [pasta]  # answers too
    assert found("rust") == [other]  # titles
    assert found("100%") == [pasta]
    assert found("%") == [pasta]  # LIKE wildcards are literal
    assert found("_") == []
    assert found("nothing like this") == []
    assert found("  ") == [other, pasta]


def test_an_id_prefix_resolves_when_unique(store: HistoryStore) -> None:
    cid = store.create_conversation(title="x")
    assert store.resolve(cid[:12]) == cid
    assert store.resolve(cid.upper()) == cid
    with pytest.raises(HistoryError, match="No conversation"):
        store.resolve("zzzz")
    store.create_conversation(title="y")
    with pytest.raises(HistoryError, match="More than one"):
        store.resolve(cid[:2])


# -- delete, truncate ---------------------------------------------------------------------------


def test_delete_removes_the_conversation_and_its_messages(
    store: HistoryStore, db_path: Path
) -> None:
    keep = store.create_conversation(title="keep")
    store.add_message(keep, "user", "k")
    gone = store.create_conversation(title="gone")
    store.add_message(gone, "user", "g")
    store.delete(gone)
    assert [s.id for s in store.list_conversations()] == [keep]
    with pytest.raises(HistoryError, match="No conversation") as info:
        store.load(gone)
    assert info.value.exit_code == 2
    with pytest.raises(HistoryError):
        store.delete(gone)
    count = query(db_path, "SELECT count(*) FROM messages WHERE conversation_id = ?", [gone])
    assert count == [(0,)]
    with pytest.raises(HistoryError, match="No conversation"):
        store.add_message(gone, "user", "into the void")


def _turns(store: HistoryStore, cid: str) -> list[tuple[str, str]]:
    return [(m.role, m.content) for m in store.load(cid).messages]


def test_regenerate_and_edit_the_last_prompt(store: HistoryStore) -> None:
    cid = store.create_conversation(title="t")
    store.add_message(cid, "user", "q1")
    a1 = store.begin_answer(cid)
    store.finish_answer(a1, "a1", status="complete")
    q2 = store.add_message(cid, "user", "q2")
    a2 = store.begin_answer(cid)
    store.finish_answer(a2, "a2", status="complete")

    # Regenerate the last answer: drop it, stream a new one.
    assert store.truncate_after(cid, a2, inclusive=True) == 1
    a2b = store.begin_answer(cid)
    store.finish_answer(a2b, "a2 again", status="complete")
    assert _turns(store, cid)[-2:] == [("user", "q2"), ("assistant", "a2 again")]
    assert a2b > a2  # ids are never reused

    # Edit and resend the last prompt: drop it and its answer, add the new text.
    assert store.truncate_after(cid, q2, inclusive=True) == 2
    store.add_message(cid, "user", "q2 edited")
    assert _turns(store, cid) == [("user", "q1"), ("assistant", "a1"), ("user", "q2 edited")]

    # truncate_after without inclusive keeps the message; truncate keeps a count.
    assert store.truncate_after(cid, a1) == 1
    assert _turns(store, cid) == [("user", "q1"), ("assistant", "a1")]
    assert store.truncate(cid, keep=1) == 1
    assert _turns(store, cid) == [("user", "q1")]
    store.delete_message(store.load(cid).messages[0].id)
    assert _turns(store, cid) == []


# -- crashes, newer and damaged files --------------------------------------------------------


def test_an_answer_left_streaming_by_a_crash_is_incomplete(db_path: Path) -> None:
    writer = HistoryStore.open(db_path)
    cid = writer.create_conversation(title="t")
    writer.add_message(cid, "user", "q")
    recorder = writer.record_answer(cid, profile="p", model="m", interval=3600)
    recorder.append("first checkpoint")
    recorder.flush()
    recorder.append(" never saved")
    # The writer's own view: still streaming.
    assert writer.load(cid).messages[-1].status == "streaming"
    writer._conn().close()  # a crash: no finish, no clean close
    writer._db = None

    with HistoryStore.open(db_path) as reader:
        last = reader.load(cid).messages[-1]
    assert (last.role, last.status, last.content) == ("assistant", "incomplete", "first checkpoint")
    assert integrity(db_path) == "ok"


def test_the_recorder_checkpoints_at_most_once_per_interval(store: HistoryStore) -> None:
    now = [0.0]
    cid = store.create_conversation(title="t")
    recorder = AnswerRecorder(store, store.begin_answer(cid), interval=1.0, clock=lambda: now[0])

    def saved() -> str:
        return store.load(cid).messages[-1].content

    recorder.append("a")
    now[0] = 0.5
    recorder.append("b")
    assert saved() == ""  # within the interval: nothing written yet
    now[0] = 1.0
    recorder.append("c")
    assert saved() == "abc"
    now[0] = 1.9
    recorder.append("d")
    assert not recorder.poll()
    assert saved() == "abc"
    now[0] = 2.0
    assert recorder.poll()  # a timer can bound the loss when tokens stop
    assert saved() == "abcd"
    assert not recorder.poll()  # nothing pending
    recorder.append("e")
    recorder.finish("stopped", stats={"tokens": 5})
    final = store.load(cid).messages[-1]
    assert (final.content, final.status, final.stats) == ("abcde", "stopped", {"tokens": 5})
    recorder.finish("complete")  # idempotent
    assert store.load(cid).messages[-1].status == "stopped"
    with pytest.raises(HistoryError):
        recorder.append("late")


def test_a_failed_checkpoint_keeps_the_text_and_finish_reports(db_path: Path) -> None:
    store = HistoryStore.open(db_path)
    cid = store.create_conversation(title="t")
    recorder = store.record_answer(cid, interval=0)
    recorder.append("kept ")
    store.close()
    recorder.append("in memory")  # the checkpoint fails: no exception while streaming
    assert isinstance(recorder.last_error, HistoryError)
    assert recorder.text == "kept in memory"
    with pytest.raises(HistoryError, match="closed"):
        recorder.finish("complete")


def test_a_database_from_a_newer_tokentide_is_refused_untouched(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    make_db(db_path, 1, sample=True, extra=f"PRAGMA user_version = {LATEST + 1};")
    before = db_path.read_bytes()
    with pytest.raises(HistoryError) as info:
        HistoryStore.open(db_path)
    message = str(info.value)
    assert "newer tokentide" in message and str(db_path) in message and "not changed" in message
    assert db_path.read_bytes() == before
    assert not db_path.with_name(db_path.name + "-wal").exists()


@pytest.mark.parametrize(
    "content",
    [b"not a database at all\n" * 100, b"SQLite format 3\x00" + b"\xff" * 4000, b"\x00" * 1],
)
def test_a_file_that_is_not_a_database_gives_a_human_message(db_path: Path, content: bytes) -> None:
    db_path.parent.mkdir(parents=True)
    db_path.write_bytes(content)
    with pytest.raises(HistoryError) as info:
        HistoryStore.open(db_path)
    message = str(info.value)
    assert str(db_path) in message
    assert "damaged or not a database" in message and ".broken" in message
    assert db_path.read_bytes() == content


def test_a_database_damaged_inside_gives_a_human_message(db_path: Path) -> None:
    with HistoryStore.open(db_path) as store:
        cid = store.create_conversation(title="t")
        for i in range(300):
            store.add_message(cid, "user", f"message {i} " * 50)
    with open(db_path, "r+b") as file:  # scribble over every page but the first
        size = os.path.getsize(db_path)
        file.seek(4096)
        file.write(b"\xa5" * (size - 4096))
    with pytest.raises(HistoryError) as info, HistoryStore.open(db_path) as store:
        store.load(cid)
    assert "damaged" in str(info.value) and str(db_path) in str(info.value)


def test_another_sqlite_database_is_not_taken_over(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    db = sqlite3.connect(db_path)
    db.execute("CREATE TABLE notes (x)")
    db.commit()
    db.close()
    with pytest.raises(HistoryError, match="not a tokentide history"):
        HistoryStore.open(db_path)
    assert query(db_path, "SELECT name FROM sqlite_master") == [("notes",)]


_OPEN = """
import sys
from tokentide.errors import HistoryError
from tokentide.history.store import HistoryStore
try:
    HistoryStore.open(sys.argv[1])
except HistoryError as error:
    print(error)
"""


def test_an_unwritable_location_gives_a_human_message(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:  # a subprocess, so that root runs it without DAC override too
        result = subprocess.run(
            [*without_root_override(), sys.executable, "-c", _OPEN,
             str(locked / "sub" / "history.sqlite3")],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
    finally:
        locked.chmod(0o700)
    assert "Cannot create the history database" in result.stdout, result.stderr
    assert not (locked / "sub").exists()


def test_closed_store_raises_history_errors(db_path: Path) -> None:
    store = HistoryStore.open(db_path)
    store.close()
    store.close()
    with pytest.raises(HistoryError, match="closed"):
        store.list_conversations()


# -- files and settings -------------------------------------------------------------------------


def test_the_default_location_is_the_data_dir_and_private(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "tide-data"
    monkeypatch.setenv("TIDE_DATA_DIR", str(data))
    with HistoryStore.open() as store:
        assert store.path == data / "history.sqlite3"
        store.create_conversation(title="x")
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert stat.S_IMODE((data / "history.sqlite3").stat().st_mode) == 0o600


def test_the_connection_uses_wal_busy_timeout_and_foreign_keys(store: HistoryStore) -> None:
    db = store._conn()
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    assert db.execute("PRAGMA busy_timeout").fetchone()[0] >= 5000
    assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert db.execute("PRAGMA user_version").fetchone()[0] == LATEST


def test_two_stores_on_one_file_see_each_other(open_store: Callable[..., HistoryStore]) -> None:
    one, two = open_store(), open_store()
    cid = one.create_conversation(title="shared")
    two.add_message(cid, "user", "from two")
    recorder = two.record_answer(cid, interval=0)
    recorder.append("streaming in two")
    # Another process's (here: store's) streaming row reads as incomplete until finished.
    assert [(m.content, m.status) for m in one.load(cid).messages] == [
        ("from two", "complete"),
        ("streaming in two", "incomplete"),
    ]
    recorder.finish("complete")
    assert one.load(cid).messages[-1].status == "complete"


def test_the_temporary_directory_is_not_polluted() -> None:
    # HistoryStore.open with an explicit path writes only there (and its -wal/-shm).
    with tempfile.TemporaryDirectory() as d:
        with HistoryStore.open(Path(d) / "h.sqlite3") as store:
            store.create_conversation(title="x")
        assert sorted(os.listdir(d)) == ["h.sqlite3"]


# -- reasoning and answer details (schema version 3) -----------------------------------------


def test_reasoning_and_details_round_trip(store: HistoryStore, db_path: Path) -> None:
    cid = store.create_conversation(title="t")
    store.add_message(cid, "user", "q")
    answer = store.begin_answer(cid, profile="p", model="m")
    reasoning = "Let me think.\n\x1b[31mred\x1b[0m \x00 日本語 😀\n"
    details = answer_details(
        tokens=[("Sure", -0.01), (" thing", None), ("\x1b]52;c;eA==\x07", -2.5)],
        nodes=[("draft", "alpha more"), ("review", "beta ✓")],
    )
    assert details == {
        "tokens": [["Sure", -0.01], [" thing", None], ["\x1b]52;c;eA==\x07", -2.5]],
        "nodes": [["draft", "alpha more"], ["review", "beta ✓"]],
    }
    store.finish_answer(
        answer, "**draft**\n\nalpha more", status="complete", reasoning=reasoning, details=details
    )
    plain = store.begin_answer(cid)
    store.finish_answer(plain, "no extras", status="complete", reasoning="", details={})

    with HistoryStore.open(db_path) as other:  # what another process reads from the file
        messages = {m.id: m for m in other.load(cid).messages}
    saved = messages[answer]
    assert saved.content == "**draft**\n\nalpha more"  # content keeps the answer as sent
    assert saved.reasoning == reasoning  # exact: escapes, NUL and all
    assert saved.details is not None and saved.details.as_dict() == details
    assert saved.tokens == [("Sure", -0.01), (" thing", None), ("\x1b]52;c;eA==\x07", -2.5)]
    assert saved.nodes == [("draft", "alpha more"), ("review", "beta ✓")]
    assert (messages[plain].reasoning, messages[plain].details) == (None, None)
    assert (messages[plain].tokens, messages[plain].nodes) == ([], [])
    assert query(db_path, "SELECT reasoning, details FROM messages WHERE id = ?", [plain]) == [
        (None, None)
    ]
    stored = query(db_path, "SELECT details FROM messages WHERE id = ?", [answer])[0][0]
    assert isinstance(stored, str) and json.loads(stored) == details  # plain JSON in the file


def test_answer_details_are_normalised_and_checked(store: HistoryStore) -> None:
    assert answer_details(tokens=[("a", None), ("b", None)]) is None  # no logprobs: nothing
    assert answer_details() is None
    cid = store.create_conversation(title="t")
    answer = store.begin_answer(cid)
    store.finish_answer(
        answer,
        "ab",
        status="complete",
        details={"tokens": [("a\ud800", float("-inf")), ("b", float("nan")), ("c", -1)]},
    )
    kept = store.load(cid).messages[-1].details
    assert kept is not None and kept.as_dict() == {
        "tokens": [["a\ufffd", None], ["b", None], ["c", -1.0]]  # JSON has no infinities
    }
    wrongs: list[dict[str, Any]] = [
        {"logits": []},
        {"tokens": [("a",)]},
        {"tokens": [(1, -0.1)]},
        {"tokens": [("a", "-0.1")]},
        {"tokens": "ab"},
        {"nodes": [("n", None)]},
        {"nodes": [5]},
    ]
    for wrong in wrongs:
        with pytest.raises(ValueError, match="details"):
            store.finish_answer(answer, "x", status="complete", details=wrong)
    assert store.load(cid).messages[-1].content == "ab"  # a refused finish changed nothing


@pytest.mark.parametrize(
    "raw",
    [
        "{not json",
        "[1, 2]",
        '"text"',
        '{"tokens": 5, "nodes": {"a": 1}}',
        '{"tokens": [["a", "x"]], "nodes": [["n"]]}',
        '{"tokens": [["a", true]]}',
    ],
)
def test_malformed_details_in_the_file_do_not_break_loading(
    store: HistoryStore, db_path: Path, raw: str
) -> None:
    cid = store.create_conversation(title="t")
    answer = store.begin_answer(cid)
    store.finish_answer(answer, "kept", status="complete", reasoning="r")
    db = sqlite3.connect(db_path, isolation_level=None)
    try:
        db.execute("UPDATE messages SET details = ? WHERE id = ?", (raw, answer))
    finally:
        db.close()
    message = store.load(cid).messages[-1]
    assert (message.content, message.reasoning, message.details) == ("kept", "r", None)
    assert (message.tokens, message.nodes) == ([], [])


def test_well_formed_parts_of_partly_malformed_details_are_kept(
    store: HistoryStore, db_path: Path
) -> None:
    cid = store.create_conversation(title="t")
    answer = store.begin_answer(cid)
    store.finish_answer(answer, "x", status="complete")
    db = sqlite3.connect(db_path, isolation_level=None)
    try:
        db.execute(
            "UPDATE messages SET details = ? WHERE id = ?",
            ('{"tokens": "garbage", "nodes": [["n", "t"]], "future": 1}', answer),
        )
    finally:
        db.close()
    assert store.load(cid).messages[-1].details == AnswerDetails(nodes=(("n", "t"),))


def test_reasoning_is_checkpointed_on_the_same_schedule_as_the_text(store: HistoryStore) -> None:
    now = [0.0]
    cid = store.create_conversation(title="t")
    recorder = AnswerRecorder(store, store.begin_answer(cid), interval=1.0, clock=lambda: now[0])

    def saved() -> tuple[str, str | None]:
        message = store.load(cid).messages[-1]
        return message.content, message.reasoning

    recorder.append_reasoning("think ")
    now[0] = 0.5
    recorder.append_reasoning("more")
    assert saved() == ("", None)  # within the interval: nothing written yet
    now[0] = 1.0
    recorder.append_reasoning(". ")
    assert saved() == ("", "think more. ")  # reasoning alone is checkpointed
    now[0] = 1.5
    recorder.append_reasoning("done")
    recorder.append("Ans")
    assert saved() == ("", "think more. ")
    now[0] = 2.0
    assert recorder.poll()  # one checkpoint carries both
    assert saved() == ("Ans", "think more. done")
    now[0] = 3.0
    recorder.append("wer")  # text alone leaves the reasoning as it is
    assert saved() == ("Answer", "think more. done")
    assert not recorder.poll()
    assert recorder.reasoning == "think more. done"
    recorder.finish("complete", details={"nodes": [("n", "Answer")]})
    final = store.load(cid).messages[-1]
    assert (final.content, final.reasoning, final.nodes) == (
        "Answer",
        "think more. done",
        [("n", "Answer")],
    )
    with pytest.raises(HistoryError):
        recorder.append_reasoning("late")


def test_checkpointed_reasoning_survives_a_crash(db_path: Path) -> None:
    writer = HistoryStore.open(db_path)
    cid = writer.create_conversation(title="t")
    writer.add_message(cid, "user", "q")
    recorder = writer.record_answer(cid, profile="p", model="m", interval=3600)
    recorder.append_reasoning("first thought ")
    recorder.append("partial")
    recorder.flush()
    recorder.append_reasoning("never saved")
    recorder.append(" never saved")
    writer._conn().close()  # a crash: no finish, no clean close
    writer._db = None

    with HistoryStore.open(db_path) as reader:
        last = reader.load(cid).messages[-1]
    assert (last.status, last.content, last.reasoning, last.details) == (
        "incomplete",
        "partial",
        "first thought ",
        None,
    )
    assert integrity(db_path) == "ok"


@given(pieces=st.lists(_texts, max_size=5), final=st.one_of(st.none(), _texts))
def test_any_unicode_reasoning_round_trips_exactly(
    shared: HistoryStore, pieces: list[str], final: str | None
) -> None:
    store = shared
    cid = store.create_conversation(title="r")
    recorder = AnswerRecorder(store, store.begin_answer(cid), interval=0.0)
    for piece in pieces:
        recorder.append_reasoning(piece)  # interval 0: every piece is a checkpoint
    assert store.load(cid).messages[-1].reasoning == ("".join(pieces) or None)
    recorder.finish("complete", reasoning=final)
    expected = "".join(pieces) if final is None else final
    assert store.load(cid).messages[-1].reasoning == (expected or None)
