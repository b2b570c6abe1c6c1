"""A tide-like writer for the crash tests: ``python crash_writer.py DB CHANNEL SEED INTERVAL
[branch]``.

It writes conversations the way the TUI does (user message committed before the request,
answer row begun, :class:`AnswerRecorder` fed every few milliseconds, finished) until it
is killed.  Half of the answers first "think": reasoning is appended for a while before
the text.  With ``branch``, each prompt first gets a short finished answer, and the
streamed answer is a second one to the same prompt (its sibling, made with
``parent_id``), as regenerating will make them.  After each step has returned it appends a line to CHANNEL with ``os.write``
(one ``write(2)`` per line: a SIGKILL leaves whole lines, no fsync needed):

    U <message id> <prompt number>     the user message is committed
    S <message id> <prompt id>         a first (finished) answer to the prompt exists
    B <message id> <prompt id>         the streamed answer's row exists
    R <message id> <t> <length>        an append_reasoning that started at monotonic time t
                                       returned; the reasoning is now <length> characters
    A <message id> <t> <length>        an append that started at monotonic time t returned;
                                       the answer's text is now <length> characters long
    F <message id> <length> <rlength>  the answer was finished (complete)

The answer text of message ``m`` is :func:`answer_text` and its reasoning
:func:`reasoning_text` (both deterministic), so the test can tell exactly which prefix
the database holds.  ``ready`` is printed on stdout once the store is open.
"""

from __future__ import annotations

import os
import random
import sys
import time
from collections.abc import Callable, Iterator

VOCAB = ("word ", "tide ", "日本語", "é", "\n", "`x`", "😀", "\x00", " ", "ok.", "\t", "∑")


def tokens(message_id: int, kind: str = "answer") -> Iterator[str]:
    rng = random.Random(message_id if kind == "answer" else f"{kind} {message_id}")
    while True:
        yield rng.choice(VOCAB)


def answer_text(message_id: int, length: int, kind: str = "answer") -> str:
    """The first ``length`` characters (at least) of message ``message_id``'s answer."""
    parts: list[str] = []
    n = 0
    for token in tokens(message_id, kind):
        if n >= length:
            break
        parts.append(token)
        n += len(token)
    return "".join(parts)


def reasoning_text(message_id: int, length: int) -> str:
    """The first ``length`` characters (at least) of message ``message_id``'s reasoning."""
    return answer_text(message_id, length, "reasoning")


def first_answer(prompt_id: int) -> str:
    return f"first answer to {prompt_id}"


def prompt_text(number: int) -> str:
    return f"prompt {number}: ünïcödé ✓ 😀\nline two"


def main() -> None:
    from tokentide.history.store import ACTIVE_LEAF, HistoryStore
    from tokentide.history.tree import Parent

    db, channel, seed, interval = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    branch = sys.argv[5:] == ["branch"]
    rng = random.Random(seed)
    fd = os.open(channel, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    def log(line: str) -> None:
        os.write(fd, (line + "\n").encode())

    def stream(
        message_id: int, seconds: float, kind: str, append: Callable[[str], None], tag: str
    ) -> int:
        """Append tokens of ``kind`` for ``seconds``, logging each; return the characters
        appended."""
        end = time.monotonic() + seconds
        length = 0
        for token in tokens(message_id, kind):
            t = time.monotonic()
            if t >= end:
                break
            append(token)
            length += len(token)
            log(f"{tag} {message_id} {t!r} {length}")
            time.sleep(rng.uniform(0.001, 0.006))
        return length

    store = HistoryStore.open(db)
    print("ready", flush=True)
    number = seed * 1000
    while True:
        cid = store.create_conversation(profile="crash")
        for _ in range(rng.randint(1, 3)):
            message_id = store.add_message(cid, "user", prompt_text(number))
            log(f"U {message_id} {number}")
            number += 1
            parent: Parent = ACTIVE_LEAF
            if branch:
                first = store.record_answer(cid, profile="crash", model="m")
                first.finish("complete", text=first_answer(message_id))
                log(f"S {first.message_id} {message_id}")
                parent = message_id
            recorder = store.record_answer(
                cid, profile="crash", model="m", interval=interval, parent_id=parent
            )
            log(f"B {recorder.message_id} {message_id}")
            thinking = rng.random() < 0.5
            seconds = rng.uniform(0.2, 1.5) if thinking else 0
            answer = recorder.message_id
            thought = stream(answer, seconds, "reasoning", recorder.append_reasoning, "R")
            length = stream(answer, rng.uniform(0.2, 2.5), "answer", recorder.append, "A")
            recorder.finish("complete", stats={"characters": length})
            log(f"F {recorder.message_id} {length} {thought}")


def burst() -> None:
    """``crash_writer.py --burst DB WORKER COUNT``: after ``go`` on stdin, write COUNT
    conversations (user message, answer with three checkpoints) as fast as possible."""
    from tokentide.history.store import HistoryStore

    db, worker, count = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    with HistoryStore.open(db) as store:
        print("ready", flush=True)
        if sys.stdin.readline() != "go\n":
            raise SystemExit("no go")
        for i in range(count):
            cid = store.create_conversation(title=f"burst {worker} {i}", profile=f"w{worker}")
            store.add_message(cid, "user", f"q {worker} {i}")
            recorder = store.record_answer(cid, interval=0)
            recorder.append_reasoning(f"r{worker}-{i}.")
            for _ in range(3):
                recorder.append(f"a{worker}-{i}.")
            recorder.finish("complete")


if __name__ == "__main__":
    burst() if sys.argv[1] == "--burst" else main()
