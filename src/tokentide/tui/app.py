"""``tide chat``: the Textual chat application.  Wiring only; the work is in
:mod:`tokentide.tui.chat_screen`.

Start-up is kept short (first frame well under 300 ms): this module imports Textual and
the small parts of tokentide the first frame needs; the backend (and with it httpx) is
created after the first frame is painted, and saved conversations load in a worker.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.markup import escape
from textual.screen import Screen
from textual.theme import Theme

from tokentide.backends.base import Backend
from tokentide.config.model import Profile, Settings
from tokentide.errors import TideError
from tokentide.tui.chat_screen import ChatScreen
from tokentide.tui.palette import ProfileCommands, TemplateCommands
from tokentide.tui.plain import PlainNotifications, SafeClipboard
from tokentide.tui.state import UiState, load_ui_state, save_ui_state

if TYPE_CHECKING:
    from tokentide.chat.tool_setup import CommandLineTools
    from tokentide.history.store import HistoryStore

__all__ = ["DEFAULT_THEME", "ChatApp", "run_chat"]

DEFAULT_THEME = "textual-dark"
UI_BUSY_TIMEOUT = 0.25
"""Seconds a history write waits for another process's lock before it is queued."""


class ChatApp(PlainNotifications, SafeClipboard, App[int]):
    """The chat application.  ``backend`` and ``store`` may be given (tests); otherwise
    the backend is built from ``profile`` and the store opened at ``history_path`` (or
    the data dir)."""

    CSS_PATH = "app.tcss"
    TITLE = "tokentide"
    ENABLE_COMMAND_PALETTE = True
    COMMANDS = App.COMMANDS | {ProfileCommands, TemplateCommands}

    def __init__(
        self,
        settings: Settings,
        profile: Profile,
        *,
        conversation_id: str | None = None,
        continue_last: bool = False,
        history_path: Path | None = None,
        backend: Backend | None = None,
        store: HistoryStore | None = None,
        ui_state_path: Path | None = None,
        clock: Callable[[], float] | None = None,
        tools: CommandLineTools | None = None,
    ) -> None:
        super().__init__()
        self._clock = clock
        self._tools = tools
        self.settings = settings
        self.profile = profile
        self._ui_state_path = ui_state_path
        self._history_error: str | None = None
        self.store = store if store is not None else self._open_store(history_path)
        if conversation_id is None and continue_last and self.store is not None:
            conversation_id = self.store.last_conversation_id()
        self._conversation_id = conversation_id
        self._backend = backend
        self._chat: ChatScreen
        self._ui_state = load_ui_state(ui_state_path)
        theme = self._ui_state.pick_theme(settings.theme, DEFAULT_THEME)
        try:
            self.theme = theme
        except Exception:  # an unknown theme name in the config: keep the default
            self.theme = DEFAULT_THEME

    def _open_store(self, path: Path | None) -> HistoryStore | None:
        from tokentide.history.store import HistoryStore

        try:
            # A short lock wait: another tide holding the file queues our writes
            # (history/pending.py) instead of freezing the chat for seconds.
            return HistoryStore.open(path, busy_timeout=UI_BUSY_TIMEOUT)
        except TideError as error:
            self._history_error = str(error)
            return None

    def get_default_screen(self) -> Screen[Any]:
        screen = ChatScreen(
            self.settings, self.profile, store=self.store, conversation_id=self._conversation_id,
            tools=self._tools,
        )  # fmt: skip
        if self._clock is not None:
            screen.session.clock = self._clock
        screen.session.backend = self._backend
        self._chat = screen
        return screen

    @property
    def chat(self) -> ChatScreen:
        """The chat screen (the default screen)."""
        return self._chat

    def on_mount(self) -> None:
        self._apply_keymap()
        self.theme_changed_signal.subscribe(self, self._remember_theme)
        for warning in self.settings.warnings:
            self.notify(warning, severity="warning", timeout=8)
        if self._history_error is not None:
            self.notify(
                self._history_error + "\nConversations will not be saved.",
                title="History",
                severity="error",
                timeout=10,
            )
        self.call_after_refresh(self._warm_backend)

    def on_ready(self) -> None:
        # Everything alive after start-up is long-lived: freeze it so the garbage
        # collector's full passes during a stream skip it (stalls 35-86 ms -> 7-30 ms,
        # docs/performance.md "Live Markdown rendering").  After the first frame: the
        # Markdown modules it lives with import markdown-it (~50 ms).
        self.call_after_refresh(self._settle_gc)

    def _settle_gc(self) -> None:
        from tokentide.tui.widgets.markdown_view import settle_gc

        settle_gc()

    def _warm_backend(self) -> None:
        """Build the backend after the first frame (it imports httpx), and load the
        message widgets (markdown-it, Pygments) the first answer will need."""
        import tokentide.tui.widgets.messages  # noqa: F401

        try:
            self.chat.ensure_backend()
        except TideError as error:
            self.notify(
                str(error),
                title=f"Profile {self.profile.name}",
                severity="error",
            )
        self.chat.tools.start()  # MCP servers start in the background

    def _apply_keymap(self) -> None:
        keys = dict(self.settings.keys)
        if not keys:
            return
        known = _binding_ids()
        unknown = sorted(set(keys) - known)
        if unknown:
            self.notify(
                f"Unknown key action(s) in the config: {', '.join(unknown)}.\n"
                f"Known: {', '.join(sorted(known))}.",
                title="Keys",
                severity="warning",
                timeout=8,
            )
        self.set_keymap({name: key for name, key in keys.items() if name in known})

    def _remember_theme(self, theme: Theme) -> None:
        self._ui_state = UiState(theme=theme.name, config_theme=self.settings.theme)
        save_ui_state(self._ui_state, self._ui_state_path)

    async def on_unmount(self) -> None:
        chat: ChatScreen | None = getattr(self, "_chat", None)
        if chat is not None:  # None when start-up failed before the screen existed
            await chat.close_backend()
        if self.store is not None:
            self.store.close()

    # -- command palette ------------------------------------------------------------------

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        if not isinstance(screen, ChatScreen):
            return
        chat = screen

        def key(binding_id: str) -> str:
            # Help is parsed as markup, and a key comes from the config file.
            return escape(chat.key_for(binding_id))

        yield SystemCommand(
            "Regenerate last answer", "Ask again for the last answer", chat.action_retry
        )
        yield SystemCommand(
            "Tools", "MCP servers and functions: their state and tools", chat.tools.show
        )
        yield SystemCommand(
            "Edit last prompt",
            "Take the last prompt back to edit and resend",
            chat.action_edit_last,
        )
        yield SystemCommand(
            "Edit prompt",
            f"Edit the focused prompt ({key('edit_message')} on a message); "
            "sending makes a new version",
            chat.action_edit_message,
        )
        yield SystemCommand(
            "Previous version",
            f"Show the previous version of the focused message ({key('branch_previous')})",
            lambda: chat.action_branch(-1),
        )
        yield SystemCommand(
            "Next version",
            f"Show the next version of the focused message ({key('branch_next')})",
            lambda: chat.action_branch(1),
        )
        yield SystemCommand(
            "Continue answer",
            f"Have the model go on after the focused or last answer ({key('continue_answer')})",
            chat.action_continue_answer,
        )
        yield SystemCommand(
            "Fork conversation",
            "A new conversation with the messages up to the focused one",
            chat.commands.fork,
        )
        yield SystemCommand(
            "Delete version",
            "Delete the focused message's version and everything after it",
            chat.commands.delete_version,
        )
        yield SystemCommand(
            "Conversation settings",
            f"System prompt, profile, model, sampling for this conversation "
            f"({key('conversation_settings')})",
            chat.action_conversation_settings,
        )
        yield SystemCommand(
            "Export conversation",
            "Write it to a Markdown file, or JSON with every branch",
            chat.exports.export,
        )
        yield SystemCommand(
            "Copy conversation",
            "Copy the branch on screen as Markdown (OSC 52)",
            chat.exports.copy_conversation,
        )
        yield SystemCommand(
            "New conversation", "Start an empty conversation", chat.action_new_conversation
        )
        yield SystemCommand(
            "Switch model",
            "Pick one of the server's models for this chat (listed live)",
            chat.action_switch_model,
        )
        yield SystemCommand(
            "Conversations", "Show or hide the conversation list", chat.action_toggle_sidebar
        )
        yield SystemCommand(
            "Rename conversation", "Give this conversation a title", chat.commands.rename
        )
        yield SystemCommand("Delete conversation", "Delete this conversation", chat.commands.delete)
        yield SystemCommand(
            "Copy", "Copy the focused message, else the last answer (OSC 52)", chat.action_copy
        )
        yield SystemCommand(
            "Copy code block",
            "Copy the last code block of the focused or last answer",
            chat.action_copy_code,
        )
        yield SystemCommand(
            "Token details",
            "Shade each token by its probability (when the server sent them)",
            chat.action_token_details,
        )
        if importlib.util.find_spec("tokentide.tui.compare_screen") is not None:
            yield SystemCommand(
                "Compare streaming vs non-streaming",
                "Send one prompt both ways, side by side",
                lambda: self._compare(chat),
            )

    def _compare(self, chat: ChatScreen) -> None:
        from tokentide.tui.compare_screen import CompareScreen

        prompt = chat.composer.prompt.strip() or next(
            (t.content for t in reversed(chat.turns) if t.role == "user"), None
        )
        self.push_screen(CompareScreen([chat.profile], prompt))


def _binding_ids() -> set[str]:
    """Every binding id the keymap (``[keys]`` in the config) may remap."""
    from tokentide.tui.chat_screen import ConversationView
    from tokentide.tui.widgets.composer import Composer
    from tokentide.tui.widgets.sidebar import Sidebar

    ids: set[str] = set()
    for owner in (ChatScreen, ConversationView, Composer, Sidebar):
        for binding in owner.BINDINGS:
            if isinstance(binding, Binding) and binding.id:
                ids.add(binding.id)
    return ids


def run_chat(
    settings: Settings,
    profile: Profile,
    *,
    conversation_id: str | None = None,
    continue_last: bool = False,
    history_path: Path | None = None,
    tools: CommandLineTools | None = None,
) -> int:
    """Run the chat app in this terminal; return the exit code."""
    app = ChatApp(
        settings,
        profile,
        conversation_id=conversation_id,
        continue_last=continue_last,
        history_path=history_path,
        tools=tools,
    )
    result = app.run()
    rescued = app.store.rescued if app.store is not None else None
    if rescued is not None:
        sys.stderr.write(
            "tide: the history database stayed locked by another process; what could not "
            f"be saved is in {rescued}\n"
        )
    if isinstance(result, int):
        return result
    return app.return_code or 0
