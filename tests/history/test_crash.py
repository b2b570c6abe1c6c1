"""Crash safety (reliability.md D1, D2): SIGKILL writers at random moments while answers
stream into one shared database, then check that the file is intact, no user message is
missing and no more than one checkpoint interval of answer text was lost; and several
processes writing at once never see a lock error or lose a row.

What proves "at most one second lost": the writer logs each append *after* it returned,
with the monotonic time at which it *started*.  An append that finds ``interval`` passed
since the last checkpoint writes one before returning, so every logged append whose text
is missing from the database started less than ``interval`` after the previous checkpoint:
the lost appends span less than ``interval`` of streaming.  The test checks that span
and, as a second view, the time from the first lost append to the kill.  Reasoning
(``append_reasoning``) shares the checkpoints with the text, so the same holds for the
reasoning and the text together.
"""

from __future__ import annotations

import random
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.history.conftest import HERE, LONG, integrity, python, query
from tests.history.crash_writer import answer_text, first_answer, prompt_text, reasoning_text
from tokentide.history.store import HistoryStore, StoredMessage

WRITER = str(HERE / "crash_writer.py")
INTERVAL = 1.0
KILLS = 200 if LONG else 20
SLOTS = 4
SLACK = 0.5
"""Scheduling allowance for the kill-time view (commit in progress, a loaded machine)."""


@dataclass
class Run:
    channel: Path
    killed_at: float
    stderr: str


@dataclass
class Findings:
    runs: list[Run] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _slot(
    db: Path, workdir: Path, slot: int, count: int, found: Findings, mode: str = "straight"
) -> None:
    rng = random.Random(slot)
    for k in range(count):
        seed = slot * 1000 + k + 1
        channel = workdir / f"slot{slot}-run{k}.log"
        child = python(
            WRITER,
            str(db),
            str(channel),
            str(seed),
            str(INTERVAL),
            *(["branch"] if mode == "branch" else []),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert child.stdout is not None
        ready = child.stdout.readline()  # the store is open: start the clock
        try:
            child.wait(timeout=rng.uniform(0.05, 2.5) if ready == b"ready\n" else 0)
        except subprocess.TimeoutExpired:
            pass
        killed_at = time.monotonic()
        exited = child.poll()
        child.kill()
        _, err = child.communicate()
        with found.lock:
            if ready != b"ready\n" or exited is not None:
                found.errors.append(f"writer {seed} stopped by itself ({exited}): {err!r}")
            found.runs.append(Run(channel, killed_at, err.decode(errors="replace")))
            check = integrity(db)  # while the other slots keep writing
            if check != "ok":
                found.errors.append(f"integrity_check after a kill: {check}")


def _lines(channel: Path) -> list[list[str]]:
    if not channel.exists():
        return []
    text = channel.read_text(encoding="utf-8")
    return [line.split() for line in text.splitlines(keepends=True) if line.endswith("\n")]


def _all_messages(db: Path) -> tuple[dict[int, StoredMessage], dict[str, int | None]]:
    """Every message of every branch (walked from the roots down), and each
    conversation's active leaf."""
    messages: dict[int, StoredMessage] = {}
    leaves: dict[str, int | None] = {}
    with HistoryStore.open(db) as store:
        for c in store.list_conversations(limit=1_000_000):
            leaves[c.id] = store.load(c.id).active_leaf
            todo = list(store.roots(c.id))
            while todo:
                message = todo.pop()
                messages[message.id] = message
                todo += store.children(message.id)
            assert c.message_count == sum(m.conversation_id == c.id for m in messages.values())
    return messages, leaves


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["straight", "branch"])
def test_sigkill_at_random_moments_loses_at_most_one_interval(tmp_path: Path, mode: str) -> None:
    """``branch``: every streamed answer is the second answer to its prompt (a sibling
    of a finished one, made with ``parent_id``): the promise holds on every branch."""
    db = tmp_path / "history.sqlite3"
    HistoryStore.open(db).close()
    found = Findings()
    kills = KILLS
    per_slot = [kills // SLOTS + (1 if s < kills % SLOTS else 0) for s in range(SLOTS)]
    threads = [
        threading.Thread(target=_slot, args=(db, tmp_path, s, n, found, mode))
        for s, n in enumerate(per_slot)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not found.errors, found.errors
    assert len(found.runs) == kills
    assert integrity(db) == "ok"

    messages, leaves = _all_messages(db)
    logged: set[int] = set()
    users = interrupted = saved_mid_stream = saved_reasoning = 0
    worst_span = worst_since = 0.0
    for run in found.runs:
        appends: dict[int, list[tuple[float, int]]] = {}
        thoughts: dict[int, list[tuple[float, int]]] = {}
        finished: dict[int, tuple[int, int]] = {}
        for line in _lines(run.channel):
            kind, mid = line[0], int(line[1])
            logged.add(mid)
            if kind == "U":  # no user message is ever missing, and it is exact
                users += 1
                assert mid in messages, f"user message {mid} lost"
                assert (messages[mid].role, messages[mid].content) == (
                    "user",
                    prompt_text(int(line[2])),
                )
            elif kind == "S":
                first = messages[mid]
                assert (first.content, first.status) == (first_answer(int(line[2])), "complete")
                assert first.parent_id == int(line[2])
            elif kind == "B":
                assert mid in messages and messages[mid].role == "assistant"
                assert messages[mid].parent_id == int(line[2])  # a sibling in branch mode
                appends.setdefault(mid, [])
            elif kind == "R":
                thoughts.setdefault(mid, []).append((float(line[2]), int(line[3])))
            elif kind == "A":
                appends[mid].append((float(line[2]), int(line[3])))
            elif kind == "F":
                finished[mid] = (int(line[2]), int(line[3]))
        for mid, steps in appends.items():
            message = messages[mid]
            content = message.content
            reasoning = message.reasoning or ""
            # Always a whole-token prefix of what was streamed: no torn or doubled text.
            assert content == answer_text(mid, len(content)), f"answer {mid} is not a prefix"
            assert reasoning == reasoning_text(mid, len(reasoning)), f"reasoning {mid}"
            if mid in finished:
                assert (message.status, len(content), len(reasoning)) == (
                    "complete",
                    *finished[mid],
                )
                continue
            if message.status == "complete":
                continue  # killed between finish() and its log line
            assert message.status == "incomplete", message.status
            assert leaves[message.conversation_id] == mid  # the branch on screen
            interrupted += 1
            saved_mid_stream += bool(content)
            saved_reasoning += bool(reasoning)
            lost = sorted(
                [t for t, length in steps if length > len(content)]
                + [t for t, length in thoughts.get(mid, []) if length > len(reasoning)]
            )
            if lost:
                span, since = lost[-1] - lost[0], run.killed_at - lost[0]
                worst_span, worst_since = max(worst_span, span), max(worst_since, since)
                assert span < INTERVAL, f"answer {mid}: lost {span:.3f} s of appends"
                assert since <= INTERVAL + SLACK, f"answer {mid}: lost text from {since:.3f} s"
    # Rows written just before a kill, before their log line: empty answers or prompts.
    for mid, message in messages.items():
        if mid not in logged:
            if message.role == "assistant" and message.status == "complete":
                # branch mode: a first answer finished just before the kill, unlogged.
                assert message.content == first_answer(message.parent_id or 0)
            elif message.role == "assistant":
                assert (message.content, message.reasoning, message.status) == (
                    "",
                    None,
                    "incomplete",
                )
            else:
                assert message.content.startswith("prompt ")
    print(
        f"{mode}: {kills} kills: {users} user messages, {interrupted} answers interrupted "
        f"({saved_mid_stream} with checkpointed text, {saved_reasoning} with checkpointed "
        f"reasoning); worst lost span {worst_span:.3f} s, "
        f"worst first-lost-to-kill {worst_since:.3f} s"
    )
    assert users >= kills and interrupted >= kills // 2
    assert saved_mid_stream > 0  # the checkpoints really happened before the kills
    assert saved_reasoning > 0


def test_concurrent_writers_never_see_a_lock_error_or_lose_rows(tmp_path: Path) -> None:
    db = tmp_path / "history.sqlite3"
    workers, count = (8, 500) if LONG else (4, 60)
    children = [
        python(
            WRITER,
            "--burst",
            str(db),
            str(w),
            str(count),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for w in range(workers)
    ]
    for child in children:  # all open, then all start at once
        assert child.stdout is not None
        if child.stdout.readline() != b"ready\n":
            # Say why (a writer that died at start, once, on a loaded machine) and leave
            # no open pipes behind to fail the next test with a ResourceWarning.
            for other in children:
                other.kill()
            errors = [other.communicate()[1].decode(errors="replace") for other in children]
            pytest.fail("a writer did not start:\n" + "\n".join(e for e in errors if e))
    for child in children:
        assert child.stdin is not None
        child.stdin.write(b"go\n")
        child.stdin.flush()
    for child in children:
        _, err = child.communicate(timeout=120)
        assert child.returncode == 0 and err == b"", err.decode(errors="replace")

    assert integrity(db) == "ok"
    rows = query(
        db,
        "SELECT c.profile, c.title, m.role, m.content, m.status, m.reasoning FROM messages m"
        " JOIN conversations c ON c.id = m.conversation_id",
    )
    expected: set[tuple[object, ...]] = set()
    for w in range(workers):
        for i in range(count):
            expected.add((f"w{w}", f"burst {w} {i}", "user", f"q {w} {i}", "complete", None))
            expected.add(
                (f"w{w}", f"burst {w} {i}", "assistant", f"a{w}-{i}." * 3, "complete", f"r{w}-{i}.")
            )
    assert len(rows) == len(expected)  # nothing duplicated
    assert set(rows) == expected  # nothing lost
