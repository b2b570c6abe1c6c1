"""Another process holding the history's write lock (issue 10): a store with a short busy
timeout answers at once, keeps every write in order in memory, saves them all when the
lock is free, and on close writes what never got the lock to a rescue file.  The lock is
held by a real second process; the test waits on its pipes, never on time."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.history.conftest import python
from tokentide.errors import HistoryBusy
from tokentide.history.store import HistoryStore

LOCKER = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
sys.stdin.readline()
db.execute("COMMIT")
print("free", flush=True)
"""


class Locker:
    def __init__(self, path: Path) -> None:
        self.child = python("-c", LOCKER, str(path), stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert self.child.stdout is not None
        assert self.child.stdout.readline() == b"locked\n"

    def release(self) -> None:
        assert self.child.stdin is not None and self.child.stdout is not None
        self.child.stdin.write(b"go\n")
        self.child.stdin.flush()
        assert self.child.stdout.readline() == b"free\n"
        self.child.communicate(timeout=30)  # closes the pipes


@pytest.fixture
def busy_store(tmp_path: Path) -> Iterator[HistoryStore]:
    store = HistoryStore.open(tmp_path / "h.sqlite3", busy_timeout=0.05)
    yield store
    store.close()


def test_writes_wait_in_order_and_land_when_the_lock_is_free(busy_store: HistoryStore) -> None:
    store = busy_store
    locker = Locker(store.path)
    cid = store.create_conversation(profile="p")
    prompt = store.add_message(cid, "user", "what I wrote")
    assert prompt < 0  # provisional: the row does not exist yet
    recorder = store.record_answer(cid, model="m", interval=0.0)
    recorder.append("what I ")
    recorder.append("received")
    recorder.finish("complete", finish_reason="stop")
    assert store.pending == 6
    with pytest.raises(HistoryBusy, match="wait in memory"):
        store.rename(cid, "not while others wait")  # says so rather than jumping the queue

    locker.release()
    assert store.flush_pending() == 0
    messages = store.load(cid).messages
    assert [(m.role, m.content, m.status) for m in messages] == [
        ("user", "what I wrote", "complete"),
        ("assistant", "what I received", "complete"),
    ]
    # A provisional id still names its message once saved.
    assert store.truncate_after(cid, prompt, inclusive=True) == 2


def test_a_write_after_the_lock_is_freed_saves_what_waited_first(
    busy_store: HistoryStore,
) -> None:
    store = busy_store
    cid = store.create_conversation()
    locker = Locker(store.path)
    store.add_message(cid, "user", "first")
    locker.release()
    store.add_message(cid, "user", "second")  # replays the queue, then writes
    assert store.pending == 0
    assert [m.content for m in store.load(cid).messages] == ["first", "second"]


def test_closing_while_still_locked_writes_a_rescue_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = HistoryStore.open(tmp_path / "h.sqlite3", busy_timeout=0.05)
    cid = store.create_conversation()
    locker = Locker(store.path)
    store.add_message(cid, "user", "do not lose me")
    # close() gives waiting writes the long timeout (10 s); keep it short here.
    monkeypatch.setattr("tokentide.history.database.BUSY_TIMEOUT_MS", 50)
    store.close()
    locker.release()
    assert store.rescued is not None
    assert store.rescued.stat().st_mode & 0o077 == 0
    saved = json.loads(store.rescued.read_text())
    assert [entry["text"] for entry in saved] == ["do not lose me"]
    assert saved[0]["conversation"] == cid
