"""``tide ask`` remembers: the exchange saved after the answer is printed.

Saving is one transaction (:meth:`~tokentide.history.exchange.ExchangeLog.add_exchange`)
after the answer is written and flushed, so the one-shot path pays nothing for it until
the answer is out, and then only the writing side of the store (docs/performance.md,
"`tide ask` remembers").  A history that cannot be written never costs the answer:
stderr says once that it was not saved, and where it went instead.  This module holds
no class: importing it is nearly free.
"""

from __future__ import annotations

import signal
import sys
from typing import IO, TYPE_CHECKING

from tokentide.errors import TideError

if TYPE_CHECKING:
    from tokentide.ask.args import Answer
    from tokentide.ask.thread import Thread
    from tokentide.config.model import Profile
    from tokentide.history.settings import ConversationSettings

__all__ = ["save"]

_LEFT_OPEN: list[object] = []
"""A saved store left open until the process ends (see :func:`_save`)."""
_BUSY_TIMEOUT = 1.0
"""Seconds the save waits for another process's lock before it queues (closing the
store then gives the queue the store's full timeout before the rescue file)."""


def save(
    prompt: str,
    answer: Answer,
    profile: Profile,
    thread: Thread | None,
    system: str | None,
    profile_system: str | None,
    stderr: IO[str] | None = None,
    *,
    keep_open: bool = False,
    title: str | None = None,
) -> None:
    """Save the exchange (prompt and answer, stopped or failed ones marked); on failure,
    say once on stderr that it was not saved and where it went.  Ctrl-C cannot cut the
    save short (it is one short transaction).

    A new conversation keeps, as its own setting, a system prompt its profile would not
    give it again (``-s``, a template's), so ``-c`` goes on with it.  ``keep_open``: the
    process ends with ``os._exit`` next, so a store with nothing waiting is left open
    rather than closed (see :func:`_save`)."""
    err = sys.stderr if stderr is None else stderr
    settings = None
    if system and system != profile_system and (thread is None or thread.conversation_id is None):
        from tokentide.history.settings import ConversationSettings

        settings = ConversationSettings(system_prompt=system)
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        _save(prompt, answer, profile, thread, settings, err, keep_open, title)
    finally:
        signal.signal(signal.SIGINT, previous)


def _say(err: IO[str], message: str) -> None:
    from tokentide.sanitize import sanitize

    try:
        err.write(f"tide: {sanitize(message)}\n")
        err.flush()
    except (BrokenPipeError, OSError, ValueError):
        pass


def _save(
    prompt: str,
    answer: Answer,
    profile: Profile,
    thread: Thread | None,
    settings: ConversationSettings | None,
    err: IO[str],
    keep_open: bool,
    title: str | None = None,
) -> None:
    from tokentide.generation import State
    from tokentide.history.exchange import ExchangeLog

    gen = answer.generation
    if gen is None:  # pragma: no cover - run_ask always sets it
        return
    text = gen.text
    reasoning = gen.reasoning
    details = None
    if answer.rounds is not None and (answer.rounds.rounds or answer.rounds.builder.tool_calls):
        from tokentide.chat.parts import stored_fields

        # Every round, with the calls and their results (the last generation holds
        # only the text after them).
        text, thoughts, details = stored_fields(answer.rounds.builder.parts())
        reasoning = thoughts or ""
    state = gen.state
    if answer.stopped and state is State.DONE:
        state = State.STOPPED  # stopped in a tool round, or a call no one could approve
    status = {State.DONE: "complete", State.ERROR: "error"}.get(state, "stopped")
    served = gen.finish.model if gen.finish is not None else None
    keep_answer = status != "stopped" or bool(text or reasoning or details)
    try:
        store = ExchangeLog.open(busy_timeout=_BUSY_TIMEOUT)
    except TideError as error:
        _say(err, f"this exchange was not saved in the history: {error.message}")
        return
    try:
        store.add_exchange(
            prompt,
            # Stopped before anything arrived: the prompt is kept, not an empty answer.
            text if keep_answer else None,
            status=status,
            conversation_id=None if thread is None else thread.conversation_id,
            parent_id=None if thread is None else thread.leaf,
            profile=profile.name,
            model=served or profile.model,
            finish_reason=gen.finish.reason if gen.finish is not None else None,
            error=gen.error.message if gen.error is not None else None,
            stats=gen.stats.as_dict(),
            reasoning=reasoning or None,
            settings=settings,
            details=details,
            title=title,
        )
    except TideError as error:
        _say(err, f"this exchange was not saved in the history: {error.message}")
    finally:
        if store.pending or not keep_open:
            try:
                store.close()
            except TideError as error:
                _say(err, f"this exchange was not saved in the history: {error.message}")
            if store.rescued is not None:
                _say(err, f"the history is busy (another tide holds it): saved to {store.rescued}")
        else:
            # Committed (WAL, synchronous=NORMAL: safe from here on, as after any crash).
            # Closing would checkpoint the WAL into the file and delete it: ~2 ms of a
            # ~110 ms answer, for work the next writer's checkpoint does anyway.  The
            # process ends with os._exit, so the connection is simply dropped.
            _LEFT_OPEN.append(store)
