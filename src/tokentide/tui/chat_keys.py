"""The chat screen's keys, and how a text names one for a person.

Every binding has an id, so ``[keys]`` in the config file can move it
(:meth:`App.set_keymap`; ``tokentide.tui.app`` warns about ids that do not exist).  A
text that names a key (the first screen, the status line, an error's "^r retries", the
palette's help) asks :func:`chat_key`, which applies the same keymap to these bindings
with Textual's own machinery and writes the key as :meth:`App.get_key_display` does, as
the footer writes it: the key shown is the one that works.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from textual.app import App
from textual.binding import Binding, BindingType

from tokentide.sanitize import sanitize
from tokentide.tui.conversation_view import ConversationView
from tokentide.tui.widgets.composer import Composer
from tokentide.tui.widgets.keys import declared_key_display
from tokentide.tui.widgets.sidebar import Sidebar

__all__ = ["CHAT_BINDINGS", "chat_key"]

CHAT_BINDINGS: list[BindingType] = [
    Binding("escape", "stop", "Stop", id="stop"),
    # Before the composer's and the screen's copy: stops an answer first (issue 11).
    Binding("ctrl+c", "interrupt", "Stop/copy", id="interrupt", show=False, priority=True),
    Binding("ctrl+r", "retry", "Retry/regenerate", id="retry"),
    Binding("ctrl+l", "edit_last", "Edit last", id="edit_last"),
    Binding("e", "edit_message", "Edit", id="edit_message", show=False),
    Binding("alt+left", "branch(-1)", "Previous version", id="branch_previous", show=False),
    Binding("alt+right", "branch(1)", "Next version", id="branch_next", show=False),
    Binding(
        "alt+c", "continue_answer", "Continue", id="continue_answer", show=False, priority=True
    ),
    Binding("ctrl+n", "new_conversation", "New", id="new_conversation"),
    Binding("ctrl+b", "toggle_sidebar", "Conversations", id="toggle_sidebar"),
    Binding("ctrl+o", "copy", "Copy", id="copy"),
    # priority: the composer would otherwise take alt+o as the letter "o".
    Binding("alt+o", "copy_code", "Copy code", id="copy_code", show=False, priority=True),
    Binding("ctrl+t", "token_details", "Token details", id="token_details", show=False),
    Binding("f2", "switch_model", "Model", id="switch_model", show=False),
    Binding("f3", "conversation_settings", "Settings", id="conversation_settings", show=False),
    Binding("ctrl+end", "follow", "Latest", id="follow_latest", show=False),
]
"""The chat screen's bindings (``ChatScreen.BINDINGS``)."""


def chat_key(app: App[Any], keymap: Mapping[str, str], binding_id: str) -> str:
    """The key of the chat screen's binding ``binding_id`` (or its composer's, view's
    or sidebar's: every id the keymap may move), remapped
    by ``keymap`` (the config's ``[keys]``) and written by ``app.get_key_display``
    ("^r", "esc", "alt+←"); ``binding_id`` itself when no binding has that id.
    Sanitised: a remapped key comes from a file."""
    declared = [*CHAT_BINDINGS, *Composer.BINDINGS, *ConversationView.BINDINGS, *Sidebar.BINDINGS]
    shown = declared_key_display(app, declared, keymap, binding_id)
    return binding_id if shown is None else sanitize(shown)
