"""The chat screen: the view of a :class:`~tokentide.chat.session.ChatSession`.

The session holds the conversation (a tree), builds the requests and records the
answers; this screen shows the branch on screen, sends the session the user's commands
and paints each answer as it streams::

    Composer.Submitted ─▶ session.send(text) ─▶ session.answer() ─▶ LiveAnswer
        ─▶ worker: async for batch in live.batches():   (the session records each batch)
                       message.add(deltas)              (one append per batch)
        ─▶ the answer's final state is painted, then session.finish(live) saves it

Esc cancels the generation: the backend unwinds (the server sees the disconnect), the
batches end and the partial answer is kept, marked "stopped".  Quitting cancels the
worker instead; it stops the generation and saves the partial answer on its way out.
Commands on whole conversations (the sidebar, settings, fork) are in
:mod:`tokentide.tui.chat_commands`, export and copy in :mod:`tokentide.tui.chat_export`;
the view's widgets in :mod:`tokentide.tui.branch_view`, the "new text" badge in
:mod:`tokentide.tui.chat_following`, the keys and how texts name them in
:mod:`tokentide.tui.chat_keys`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar, TypeVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, Vertical
from textual.reactive import reactive
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Footer, Header

from tokentide.chat.session import ChatSession
from tokentide.errors import TideError
from tokentide.tui.answer_stream import ANSWER_GROUP, AnswerStream
from tokentide.tui.branch_view import BranchView, EarlierMessages
from tokentide.tui.chat_commands import ChatCommands
from tokentide.tui.chat_export import ExportCommands
from tokentide.tui.chat_following import Following
from tokentide.tui.chat_keys import CHAT_BINDINGS, chat_key
from tokentide.tui.chat_tools import ChatTools
from tokentide.tui.chat_versions import VersionCommands
from tokentide.tui.conversation_view import ConversationView, FoldedHistory, NewTextBadge
from tokentide.tui.widgets.composer import Composer
from tokentide.tui.widgets.sidebar import Sidebar
from tokentide.tui.widgets.status import StatusLine

if TYPE_CHECKING:
    from tokentide.backends.base import Backend
    from tokentide.chat.live import LiveAnswer
    from tokentide.chat.tool_setup import CommandLineTools
    from tokentide.chat.tree import Turn
    from tokentide.config.model import Profile, Settings
    from tokentide.history.store import HistoryStore

__all__ = ["ANSWER_GROUP", "ChatScreen", "ConversationView", "FoldedHistory"]

_PartT = TypeVar("_PartT", bound=Widget)


class ChatScreen(Screen[None]):
    """See the module docstring."""

    AUTO_FOCUS = "#composer"
    BINDINGS: ClassVar[list[BindingType]] = CHAT_BINDINGS

    DEFAULT_CSS = """
    ChatScreen #body, ChatScreen #main {
        height: 1fr;
    }
    ChatScreen #sidebar {
        dock: left;
    }
    /* Floats over the end of the conversation, above the status line and the composer. */
    ChatScreen #new-text {
        dock: bottom;
        offset-y: -5;
        margin-left: 2;
    }
    /* The first screen, until the first prompt: who answers and the keys. */
    ChatScreen #welcome {
        height: auto;
        padding: 1 2;
    }
    """

    generating: reactive[bool] = reactive(False)

    def __init__(
        self,
        settings: Settings,
        profile: Profile,
        *,
        store: HistoryStore | None,
        conversation_id: str | None = None,
        clock: Callable[[], float] = time.perf_counter,
        tools: CommandLineTools | None = None,
    ) -> None:
        super().__init__(id="chat")
        self.settings = settings
        self.store = store
        self.session = ChatSession(
            settings, profile, store, clock=clock, report=self.history_problem
        )
        self._opening = conversation_id
        self._idle = asyncio.Event()
        self._idle.set()
        self._parts: dict[str, Widget] = {}
        self._keys: dict[str, str] = {}
        """:meth:`key_for`'s answers (the keymap is the config's, fixed for the app)."""
        self.shown = BranchView(self)
        """The widgets of the branch on screen (:mod:`tokentide.tui.branch_view`)."""
        self.commands = ChatCommands(self)
        self.stream = AnswerStream(self)
        self.versions = VersionCommands(self)
        self.following = Following(self)
        self.exports = ExportCommands(self)
        self.tools = ChatTools(self, tools)
        """The conversation's tools (:mod:`tokentide.tui.chat_tools`), started after
        the first frame."""
        self.editing: int | None = None
        """The prompt being edited in the composer (sending makes a new version of it)."""
        self.history_painted = asyncio.Event()
        """Set once an opened conversation's newest messages have been painted."""

    # What the session holds, as the app and the tests read it.

    @property
    def profile(self) -> Profile:
        return self.session.profile

    @property
    def conversation_id(self) -> str | None:
        return self.session.conversation_id

    @property
    def turns(self) -> list[Turn]:
        """The branch on screen, root first."""
        return self.session.branch

    # -- layout ---------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False, icon="≋")
        with Horizontal(id="body"):
            yield Sidebar(id="sidebar")
            with Vertical(id="main"):
                yield ConversationView(id="conversation")
                yield NewTextBadge("↓ new text", id="new-text")  # its text: chat_following
                yield StatusLine(id="status")
                yield Composer(id="composer")
        yield Footer()

    # The parts are found once and kept: a generation ending while the app quits (its
    # widgets already gone from the DOM) must still be able to reach them.

    @property
    def view(self) -> ConversationView:
        return self._part("#conversation", ConversationView)

    @property
    def composer(self) -> Composer:
        return self._part("#composer", Composer)

    @property
    def status(self) -> StatusLine:
        return self._part("#status", StatusLine)

    @property
    def sidebar(self) -> Sidebar:
        return self._part("#sidebar", Sidebar)

    def _part(self, selector: str, kind: type[_PartT]) -> _PartT:
        part = self._parts.get(selector)
        if part is None:
            part = self._parts[selector] = self.query_one(selector, kind)
        assert isinstance(part, kind)
        return part

    def on_mount(self) -> None:
        self.title = "tokentide"
        self.show_profile()
        self.view.anchor()
        self.sidebar.display = False
        self.status.set_keys(stop=self.key_for("stop"), retry=self.key_for("retry"))
        # No timer runs while the chat is idle (issue 17): the "new text" badge polls
        # only while an answer streams (:mod:`tokentide.tui.chat_following`); the
        # history checkpoint ticks only while an answer is recorded or writes wait.
        self.following.start()
        self._checkpoint_timer = self.set_interval(0.5, self._checkpoint, pause=True)
        if self._opening is not None:
            self.commands.open_conversation(self._opening)

    async def on_unmount(self) -> None:
        await self.close_backend()

    def show_profile(self) -> None:
        from tokentide.chat.labels import model_label
        from tokentide.sanitize import sanitize_title

        profile = self.profile
        model = model_label(profile)
        self.sub_title = sanitize_title(f"{profile.name} · {profile.api} · {model}", limit=100)
        if not self.shown:
            self.shown.welcome()

    def history_problem(self, error: TideError) -> None:
        """A history write failed: say so (the conversation goes on in memory)."""
        self.notify(str(error), title="History", severity="error")

    def _checkpoint(self) -> None:
        """Bound the text a crash can lose in time too, when tokens pause; retry the
        history writes that wait for another process's lock."""
        self.session.checkpoint()
        self.commands.flush_history()
        self.arm_checkpoint()

    def arm_checkpoint(self) -> None:
        """Tick while an answer is being recorded or history writes wait; else sleep."""
        if self.generating or self.commands.history_waiting():
            self._checkpoint_timer.resume()
        else:
            self._checkpoint_timer.pause()

    def watch_generating(self, generating: bool) -> None:
        # (No CSS class for this: a class on the screen restyles every widget in it,
        # ~40 ms with a few answers on screen, at the start and at the end of each.)
        self.composer.answer_streaming = generating
        self.following.streaming(generating)
        if generating:
            self._idle.clear()
        else:
            self._idle.set()
        self.arm_checkpoint()
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "stop":
            return self.generating or self.editing is not None
        return True

    # -- the backend ----------------------------------------------------------------------

    def ensure_backend(self) -> Backend:
        return self.session.ensure_backend()

    async def close_backend(self) -> None:
        await self.session.close()

    def use_profile(self, profile: Profile, title: str) -> bool:
        """Answer with ``profile`` from now on (a new backend; the old one closes once
        idle).  False, with the reason shown, when its backend cannot be built."""
        self.action_stop()
        try:
            old = self.session.use_profile(profile)
        except TideError as error:
            self.notify(str(error), title=title, severity="error")
            return False
        self.show_profile()
        if old is not None:
            self._close_later(old)
        return True

    @work(group="close-backend")
    async def _close_later(self, backend: Backend) -> None:
        await self._idle.wait()
        await backend.aclose()

    def busy(self) -> bool:
        """True (and the user told so) while an answer streams."""
        if self.generating:
            self.notify(
                f"Still answering. {self.key_for('stop')} stops it.", severity="warning", timeout=3
            )
        return self.generating

    async def wait_idle(self) -> None:
        self.action_stop()
        await self._idle.wait()

    # -- sending --------------------------------------------------------------------------

    @on(Composer.Submitted)
    async def _submitted(self, event: Composer.Submitted) -> None:
        event.stop()
        live = self.session.live
        if self.generating:
            if live is not None and live.busy:
                self.busy()
                return
            await self._idle.wait()
        text = event.text
        composer = self.composer
        composer.remember(text)
        composer.clear_prompt()
        editing, self.editing = self.editing, None
        composer.border_title = None
        self.start(self.session.submit(text, editing=editing))

    def start(self, begin: Callable[[], LiveAnswer]) -> None:
        """Start an answer (``begin`` is a session command) and stream it into view."""
        self.stream.start(begin)

    def key_for(self, binding_id: str) -> str:
        """The key that runs ``binding_id`` as the app displays keys (``^r``, ``esc``),
        the config's ``[keys]`` applied (:func:`~tokentide.tui.chat_keys.chat_key`)."""
        shown = self._keys.get(binding_id)
        if shown is None:
            shown = self._keys[binding_id] = chat_key(self.app, self.settings.keys, binding_id)
        return shown

    # -- stopping, retrying, editing, versions --------------------------------------------

    def action_interrupt(self) -> None:
        """ctrl+c, as in every terminal chat: stop the answer while one streams (exactly
        as Esc); otherwise copy what is selected (the prompt's selection, else the mouse
        selection on screen); with nothing to stop or copy, say how to quit."""
        if self.generating:
            self.action_stop()
        elif self.composer.selected_text:
            self.composer.action_copy()
        elif self.get_selected_text():
            self.action_copy_text()
        else:
            self.app.action_help_quit()

    def action_stop(self) -> None:
        live = self.session.live
        if live is not None and live.busy:
            live.cancel()
        elif self.editing is not None:
            self.versions.cancel_edit()
        self.composer.focus()

    async def action_retry(self) -> None:
        """Retry after an error, or regenerate the last answer (a new version)."""
        self.versions.retry()

    async def action_edit_last(self) -> None:
        await self.versions.edit_last()

    async def action_edit_message(self) -> None:
        await self.versions.edit_message()

    def action_branch(self, step: int) -> None:
        self.versions.switch(step)

    def action_continue_answer(self) -> None:
        self.versions.continue_answer()

    # -- copying, token details, following -------------------------------------------------

    def action_copy(self) -> None:
        self.exports.copy()

    def action_copy_code(self) -> None:
        self.exports.copy_code()

    def action_token_details(self) -> None:
        from tokentide.tui.widgets.messages import AssistantMessage

        target = self.shown.target()
        if not isinstance(target, AssistantMessage) or not target.toggle_details():
            self.notify(
                "No token details for that answer (the server sent no logprobs).",
                timeout=4,
            )

    def action_follow(self) -> None:
        self.following.follow()

    @on(EarlierMessages.Wanted)
    def _earlier_wanted(self) -> None:
        self.shown.show_earlier()

    @on(NewTextBadge.Clicked)
    def _badge_clicked(self) -> None:
        self.action_follow()

    # -- conversations (mod:`tokentide.tui.chat_commands`) -------------------------------

    def action_switch_model(self) -> None:
        self.commands.switch_model()

    def action_conversation_settings(self) -> None:
        self.commands.edit_settings()

    async def action_new_conversation(self) -> None:
        await self.commands.new_conversation()

    async def action_toggle_sidebar(self) -> None:
        await self.commands.toggle_sidebar()

    @on(Sidebar.Opened)
    def _sidebar_opened(self, event: Sidebar.Opened) -> None:
        self.commands.open_conversation(event.conversation_id)
        self.composer.focus()

    @on(Sidebar.Search)
    def _sidebar_search(self, event: Sidebar.Search) -> None:
        self.commands.search(event.query)

    @on(Sidebar.RenameRequested)
    def _sidebar_rename(self, event: Sidebar.RenameRequested) -> None:
        self.commands.rename(event.conversation_id)

    @on(Sidebar.DeleteRequested)
    def _sidebar_delete(self, event: Sidebar.DeleteRequested) -> None:
        self.commands.delete(event.conversation_id)
