"""``tide ask`` remembers: the conversation ``-c``/``--conversation`` continues, and the
exchange saved after the answer is printed.

Saving is one transaction (:meth:`~tokentide.history.store.HistoryStore.add_exchange`)
after the answer is written and flushed, so the one-shot path pays nothing for it until
the answer is out; this module imports the store only then (or, for ``-c``, before the
request, to read the conversation).  A history that cannot be written never costs the
answer: stderr says once that it was not saved, and where it went instead.
"""

from __future__ import annotations

import os
import signal
import sys
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING

from tokentide.backends.base import Message
from tokentide.errors import TideError, UsageError

if TYPE_CHECKING:
    from tokentide.ask import Answer, AskArgs
    from tokentide.config.model import Profile, Settings
    from tokentide.history.settings import ConversationSettings

__all__ = ["Thread", "check_continue", "open_thread", "save"]

_BUSY_TIMEOUT = 1.0
"""Seconds the save waits for another process's lock before it queues (closing the
store then gives the queue the store's full timeout before the rescue file)."""


@dataclass(frozen=True, slots=True)
class Thread:
    """The conversation a prompt continues: its active branch as the request carries it."""

    conversation_id: str | None
    """None: there is no conversation yet (``-c`` on an empty history starts one)."""
    leaf: int | None = None
    """The message the new prompt follows (the tip of the branch the request carried)."""
    messages: tuple[Message, ...] = ()
    """The earlier turns, root first, without a system prompt."""
    system: str | None = None
    """The conversation's own system prompt (its settings), if it has one."""
    profile: str | None = None
    """The profile it was started with."""


def check_continue(args: AskArgs) -> None:
    """``-c`` used to name the config file: refuse what looks like that old use."""
    if args.continue_last and args.conversation is not None:
        raise UsageError("Give -c/--continue or --conversation ID, not both.")
    if args.continue_last:
        for word in args.prompt:
            if word.endswith(".toml") and os.path.isfile(word):
                raise UsageError(
                    f"-c means --continue now, and {word!r} looks like a config file.",
                    hint=f"Name a config file with --config {word} (or $TIDE_CONFIG).",
                )


def open_thread(args: AskArgs) -> Thread:
    """The conversation ``-c`` (the most recent) or ``--conversation PREFIX`` names.

    An unknown or ambiguous prefix is a usage error (exit 2), worded as ``tide history``
    words it; ``-c`` with no history yet starts a new conversation."""
    from tokentide.history.lookup import _no_conversation, open_existing, resolve_id

    store = open_existing()
    if store is None:
        if args.conversation is not None:
            raise _no_conversation(args.conversation)
        return Thread(None)
    try:
        if args.conversation is not None:
            conversation_id: str | None = resolve_id(store, args.conversation)
        else:
            conversation_id = store.last_conversation_id()
        if conversation_id is None:
            return Thread(None)
        conversation = store.load(conversation_id)
    finally:
        store.close()
    turns = tuple(
        Message("user" if m.role == "user" else "assistant", m.content)
        for m in conversation.messages
        if m.role == "user" or (m.role == "assistant" and m.content)
    )
    own = conversation.settings
    return Thread(
        conversation.id,
        leaf=conversation.active_leaf,
        messages=turns,
        system=None if own is None else own.system_prompt,
        profile=conversation.profile,
    )


def thread_profile(thread: Thread | None, settings: Settings) -> str | None:
    """The profile a continued conversation goes on with when none is named: its own,
    if the config still has it."""
    if thread is None or thread.profile is None:
        return None
    from tokentide.config.load import BUILTIN_LOCAL

    known = thread.profile in settings.profiles or thread.profile == BUILTIN_LOCAL.name
    return thread.profile if known else None


def save(
    prompt: str,
    answer: Answer,
    profile: Profile,
    thread: Thread | None,
    system: str | None,
    profile_system: str | None,
    stderr: IO[str] | None = None,
) -> None:
    """Save the exchange (prompt and answer, stopped or failed ones marked); on failure,
    say once on stderr that it was not saved and where it went.  Ctrl-C cannot cut the
    save short (it is one short transaction).

    A new conversation keeps, as its own setting, a system prompt its profile would not
    give it again (``-s``, a template's), so ``-c`` goes on with it."""
    err = sys.stderr if stderr is None else stderr
    settings = None
    if system and system != profile_system and (thread is None or thread.conversation_id is None):
        from tokentide.history.settings import ConversationSettings

        settings = ConversationSettings(system_prompt=system)
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        _save(prompt, answer, profile, thread, settings, err)
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
) -> None:
    from tokentide.generation import State
    from tokentide.history.exchange import ExchangeLog

    gen = answer.generation
    if gen is None:  # pragma: no cover - run_ask always sets it
        return
    text = "".join(answer.parts)
    reasoning = "".join(answer.reasoning)
    state = gen.state
    status = {State.DONE: "complete", State.ERROR: "error"}.get(state, "stopped")
    served = gen.finish.model if gen.finish is not None else None
    keep_answer = status != "stopped" or bool(text or reasoning)
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
        )
    except TideError as error:
        _say(err, f"this exchange was not saved in the history: {error.message}")
    finally:
        try:
            store.close()
        except TideError as error:
            _say(err, f"this exchange was not saved in the history: {error.message}")
        if store.rescued is not None:
            _say(err, f"the history is busy (another tide holds it): saved to {store.rescued}")
