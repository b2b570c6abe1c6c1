"""Schema migrations: every released version upgrades to the latest, a crash during an
upgrade leaves the file exactly old or new, and two processes upgrading at once agree."""

from __future__ import annotations

import random
import shutil
import signal
import sqlite3
import subprocess
from pathlib import Path

import pytest

from tests.history.conftest import (
    LONG,
    SCHEMAS,
    integrity,
    make_db,
    python,
    query,
    schema_of,
    user_version,
)
from tokentide.errors import HistoryError
from tokentide.history.records import AnswerDetails
from tokentide.history.schema import LATEST, MIGRATIONS
from tokentide.history.store import HistoryStore


def test_every_released_schema_has_a_frozen_fixture() -> None:
    assert set(SCHEMAS) == set(range(1, LATEST)), "add the released schema to conftest.SCHEMAS"
    assert len(MIGRATIONS) == LATEST >= 2


def _fresh(tmp_path: Path) -> Path:
    path = tmp_path / "fresh.sqlite3"
    HistoryStore.open(path).close()
    return path


@pytest.mark.parametrize("version", sorted(SCHEMAS))
def test_an_earlier_schema_upgrades_to_the_latest(tmp_path: Path, version: int) -> None:
    path = make_db(tmp_path / "old.sqlite3", version)
    before = query(path, "SELECT id, role, content, status FROM messages ORDER BY id")

    with HistoryStore.open(path) as store:
        conversations = store.list_conversations()
        old = store.load("01aaaaaaaaaaaaaa")
        # New features work on upgraded data.
        answer = store.begin_answer("01aaaaaaaaaaaaaa", profile="work", model="m2")
        store.finish_answer(
            answer,
            "new",
            status="complete",
            stats={"tokens": 1},
            reasoning="thought",
            details={"tokens": [("new", -0.5)]},
        )
        after = store.load("01aaaaaaaaaaaaaa")
        latest = after.messages[-1]
        assert (latest.id, latest.parent_id, after.active_leaf) == (answer, 5, answer)
        other = store.load("01bbbbbbbbbbbbbb")
        assert latest.stats == {"tokens": 1}
        assert (latest.reasoning, latest.details) == (
            "thought",
            AnswerDetails(tokens=(("new", -0.5),)),
        )

    assert user_version(path) == LATEST
    assert integrity(path) == "ok"
    assert schema_of(path) == schema_of(_fresh(tmp_path))  # upgraded == created new
    assert [c.id for c in conversations] == ["01bbbbbbbbbbbbbb", "01aaaaaaaaaaaaaa"]
    assert [(m.id, m.role, m.content) for m in old.messages] == [r[:3] for r in before[:5]]
    assert old.messages[-1].status == "incomplete"  # v1 left it streaming
    assert all(m.stats == {} for m in old.messages)
    assert all(m.reasoning is None and m.details is None for m in old.messages)
    # Schema 4: each conversation became one straight branch, its leaf the last message.
    assert [m.parent_id for m in old.messages] == [None, 1, 2, 3, 4]
    assert (old.active_leaf, old.settings) == (5, None)
    assert [(m.id, m.parent_id) for m in other.messages] == [(6, None), (7, 6)]
    assert other.active_leaf == 7
    assert query(path, "SELECT id, role, content, status FROM messages ORDER BY id")[:-1] == before

    backup = tmp_path / f"old.sqlite3.v{version}.bak"
    assert user_version(backup) == version  # a copy of the file as it was
    assert query(backup, "SELECT id, role, content, status FROM messages ORDER BY id") == before


def test_a_new_database_goes_through_every_migration(tmp_path: Path) -> None:
    path = _fresh(tmp_path)
    assert user_version(path) == LATEST
    names = {row[1] for row in schema_of(path)}
    assert {"conversations", "messages", "messages_by_conversation"} <= names
    assert not list(tmp_path.glob("*.bak"))  # nothing to back up


def _big(path: Path, version: int, conversations: int = 400, per: int = 250) -> Path:
    """A database of schema ``version`` large enough that the upgrade transactions last a
    while."""
    make_db(path, version)
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("BEGIN")
        stamp = "2025-01-01T00:00:00.000000+00:00"
        for c in range(conversations):
            cid = f"00{c:014d}"
            db.execute(
                "INSERT INTO conversations VALUES (?, ?, NULL, ?, ?)", (cid, f"c{c}", stamp, stamp)
            )
            db.executemany(
                "INSERT INTO messages (conversation_id, role, content, status, created_at,"
                " updated_at) VALUES (?, 'user', ?, 'complete', ?, ?)",
                [(cid, f"message {c}/{i} " * 4, stamp, stamp) for i in range(per)],
            )
        db.execute("COMMIT")
    finally:
        db.close()
    return path


@pytest.fixture(scope="module")
def big_files(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    """One big file per released schema, made on first use."""
    return {}


@pytest.fixture(params=sorted(SCHEMAS))
def big_old(
    request: pytest.FixtureRequest,
    big_files: dict[int, Path],
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[int, Path]:
    version: int = request.param
    if version not in big_files:
        big_files[version] = _big(tmp_path_factory.mktemp("big") / f"v{version}.sqlite3", version)
    return version, big_files[version]


_OPEN = "import sys; from tokentide.history.store import HistoryStore; HistoryStore.open(sys.argv[1]).close()"

_SHAPES: dict[int, tuple[set[str], set[str], set[str]]] = {
    # version: (message columns, conversation columns, indexes) that version adds
    2: ({"stats"}, set(), {"messages_by_conversation", "conversations_by_update"}),
    3: ({"reasoning", "details"}, set(), set()),
    4: ({"parent_id"}, {"active_leaf", "settings"}, {"messages_by_parent"}),
}
"""What each migration adds: a file at version v has everything up to v, nothing after."""


def _check_shape(path: Path, rows: int, *, oldest: int) -> int:
    """The file is intact and exactly at one version between ``oldest`` and the latest
    (every migration whole or not at all); returns the version."""
    assert integrity(path) == "ok"
    version = user_version(path)
    assert oldest <= version <= LATEST
    columns = {row[1] for row in query(path, "PRAGMA table_info(messages)")}
    heads = {row[1] for row in query(path, "PRAGMA table_info(conversations)")}
    indexes = {row[0] for row in query(path, "SELECT name FROM sqlite_master WHERE type='index'")}
    for added, (message_columns, conversation_columns, new_indexes) in _SHAPES.items():
        present = added <= version
        assert all((c in columns) == present for c in message_columns), (version, added)
        assert all((c in heads) == present for c in conversation_columns), (version, added)
        assert all((i in indexes) == present for i in new_indexes), (version, added)
    assert query(path, "SELECT count(*) FROM messages") == [(rows,)]
    if version >= 4:
        _assert_straight(path)
    return version


def _assert_straight(path: Path) -> None:
    """Every conversation is one straight branch: each message follows the one before
    it in id order, and the active leaf is the last."""
    wrong = query(
        path,
        "SELECT m.id FROM messages m WHERE m.parent_id IS NOT (SELECT max(p.id) FROM messages p"
        " WHERE p.conversation_id = m.conversation_id AND p.id < m.id)",
    )
    assert wrong == []
    leaves = query(
        path,
        "SELECT c.id FROM conversations c WHERE c.active_leaf IS NOT"
        " (SELECT max(m.id) FROM messages m WHERE m.conversation_id = c.id)",
    )
    assert leaves == []


def _wait_for_write_lock(path: Path, child: subprocess.Popen[bytes]) -> bool:
    """Poll until another connection holds the write lock (the migration transaction
    has begun); False if the child finished first."""
    probe = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        while child.poll() is None:
            try:
                probe.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as error:
                assert "locked" in str(error)
                return True
            probe.execute("ROLLBACK")
        return False
    finally:
        probe.close()


@pytest.mark.slow
def test_kill_9_during_a_migration_leaves_the_old_or_the_new_version(
    tmp_path: Path, big_old: tuple[int, Path]
) -> None:
    oldest, big = big_old
    rows = query(big, "SELECT count(*) FROM messages")[0][0]
    assert isinstance(rows, int)
    rng = random.Random(7)
    outcomes: list[tuple[str, int]] = []
    runs = 30 if LONG else 6
    for run in range(runs):
        path = tmp_path / f"run{run}.sqlite3"
        shutil.copyfile(big, path)
        child = python("-c", _OPEN, str(path))
        if run % 2 == 0:
            # Kill the moment the upgrade transaction holds the write lock.
            mode = "in-transaction"
            if not _wait_for_write_lock(path, child):
                pytest.fail("the migration finished before its transaction was seen")
        else:
            # Kill at a random moment of the whole open (start-up, backup, migration).
            mode = "random"
            try:
                child.wait(timeout=rng.uniform(0.05, 0.6))
            except subprocess.TimeoutExpired:
                pass
        child.send_signal(signal.SIGKILL)
        child.wait()
        outcomes.append((mode, _check_shape(path, rows, oldest=oldest)))
        # Whatever happened, the next start upgrades cleanly and keeps every row.
        with HistoryStore.open(path) as store:
            assert len(store.load("00" + "0" * 14).messages) == 250
        assert user_version(path) == LATEST and integrity(path) == "ok"
        assert query(path, "SELECT count(*) FROM messages") == [(rows,)]
        _assert_straight(path)
    # The transaction-triggered kills really interrupted an upgrade.
    assert ("in-transaction", oldest) in outcomes, outcomes


def test_two_processes_upgrading_at_once_agree(tmp_path: Path, big_old: tuple[int, Path]) -> None:
    oldest, big = big_old
    path = tmp_path / "shared.sqlite3"
    shutil.copyfile(big, path)
    rows = query(path, "SELECT count(*) FROM messages")[0][0]
    children = [
        python("-c", _OPEN, str(path), stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
        for _ in range(3)
    ]
    for child in children:
        _, err = child.communicate(timeout=60)
        assert child.returncode == 0, err.decode()
        assert err == b""
    assert user_version(path) == LATEST and integrity(path) == "ok"
    assert query(path, "SELECT count(*) FROM messages") == [(rows,)]
    _assert_straight(path)
    assert user_version(tmp_path / f"shared.sqlite3.v{oldest}.bak") == oldest
    assert not list(tmp_path.glob(".*.tmp"))  # each process's temporary copy is gone


def test_a_half_applied_migration_cannot_exist(tmp_path: Path) -> None:
    """A migration that fails part-way (here: its second statement) leaves the file at
    the old version with none of its changes, and the error is reported."""
    path = make_db(tmp_path / "old.sqlite3", 1)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute(  # makes the v2 index creation fail after the column was added
        "CREATE TABLE messages_by_conversation (x)"
    )
    db.close()
    with pytest.raises(HistoryError) as info:
        HistoryStore.open(path)
    assert "messages_by_conversation" in str(info.value)
    assert user_version(path) == 1
    assert "stats" not in [row[1] for row in query(path, "PRAGMA table_info(messages)")]
    assert integrity(path) == "ok"


def test_a_half_applied_version_3_migration_cannot_exist(tmp_path: Path) -> None:
    """The same for 2 -> 3: its second column fails, the first is not left behind."""
    path = make_db(
        tmp_path / "old.sqlite3", 2, extra="ALTER TABLE messages ADD COLUMN details BLOB;"
    )
    with pytest.raises(HistoryError) as info:
        HistoryStore.open(path)
    assert "details" in str(info.value)
    assert user_version(path) == 2
    columns = [row[1] for row in query(path, "PRAGMA table_info(messages)")]
    assert "stats" in columns and "reasoning" not in columns
    assert integrity(path) == "ok"


def test_a_half_applied_version_4_migration_cannot_exist(tmp_path: Path) -> None:
    """The same for 3 -> 4: its last statement (the index) fails; the new columns and
    the parents it already filled in are not left behind."""
    path = make_db(tmp_path / "old.sqlite3", 3, extra="CREATE TABLE messages_by_parent (x);")
    with pytest.raises(HistoryError) as info:
        HistoryStore.open(path)
    assert "messages_by_parent" in str(info.value)
    assert user_version(path) == 3
    assert "parent_id" not in [row[1] for row in query(path, "PRAGMA table_info(messages)")]
    assert "active_leaf" not in [row[1] for row in query(path, "PRAGMA table_info(conversations)")]
    assert integrity(path) == "ok"


def test_what_version_3_saved_survives_the_upgrade(tmp_path: Path) -> None:
    details = '{"tokens":[["Hi",-0.25],[" there",null]]}'
    path = make_db(
        tmp_path / "old.sqlite3",
        3,
        extra=f"UPDATE messages SET reasoning = 'hm', details = '{details}', stats = '{{\"tokens\": 2}}'"
        " WHERE id = 3;",
    )
    with HistoryStore.open(path) as store:
        answer = store.load("01aaaaaaaaaaaaaa").messages[2]
    assert (answer.content, answer.reasoning, answer.stats) == ("Hi there", "hm", {"tokens": 2})
    assert answer.tokens == [("Hi", -0.25), (" there", None)]
    assert answer.parent_id == 2
    assert user_version(tmp_path / "old.sqlite3.v3.bak") == 3
