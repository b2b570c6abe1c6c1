"""``tide ask`` remembers: the conversation ``-c``/``--conversation`` continues (read
before the request: its active branch is what the request carries).  The exchange is
saved afterwards by :mod:`tokentide.ask.save`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tokentide.backends.base import Message
from tokentide.errors import UsageError

if TYPE_CHECKING:
    from tokentide.ask.args import AskArgs
    from tokentide.config.model import Profile, Settings
    from tokentide.history.settings import ConversationSettings

__all__ = ["Thread", "check_continue", "open_thread", "thread_profile", "with_own_settings"]


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
    settings: ConversationSettings | None = None
    """The conversation's own settings (profile, model, sampling), if it has any."""


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
    from tokentide.history.lookup import open_existing, resolve_id
    from tokentide.history.tree import no_conversation

    store = open_existing()
    if store is None:
        if args.conversation is not None:
            raise no_conversation(args.conversation)
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
    from tokentide.chat.tree import Turn, carried_messages

    # As the chat's session carries a branch (the same rule, the same code).
    turns = carried_messages(Turn.saved(m) for m in conversation.messages)
    own = conversation.settings
    return Thread(
        conversation.id,
        leaf=conversation.active_leaf,
        messages=turns,
        system=None if own is None else own.system_prompt,
        profile=conversation.profile if own is None or own.profile is None else own.profile,
        settings=own,
    )


def thread_profile(thread: Thread | None, settings: Settings) -> str | None:
    """The profile a continued conversation goes on with when none is named: its own,
    if the config still has it."""
    if thread is None or thread.profile is None:
        return None
    from tokentide.config.load import BUILTIN_LOCAL

    known = thread.profile in settings.profiles or thread.profile == BUILTIN_LOCAL.name
    return thread.profile if known else None


def with_own_settings(profile: Profile, own: ConversationSettings, args: AskArgs) -> Profile:
    """``profile`` with a continued conversation's own model and sampling (as the chat
    uses them), where the command line does not give its own."""
    from dataclasses import replace

    changes: dict[str, object] = {}
    # The model belongs to the profile the settings were made with: not to another
    # one named on the command line (-P, -t, --api).
    same_profile = args.profile is None and args.template is None and args.api is None
    if own.model is not None and args.model is None and same_profile:
        changes["model"] = own.model
    for name in ("temperature", "max_tokens", "seed", "top_p"):
        value = getattr(own, name)
        if value is not None and getattr(args, name, None) is None:
            changes[name] = value
    return replace(profile, **changes) if changes else profile  # type: ignore[arg-type]
