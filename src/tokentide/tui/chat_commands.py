"""The chat screen's commands on whole conversations: open, new, rename, delete, the
sidebar, profile and model switching, the conversation's settings, fork and delete a
version (export and copy are :mod:`tokentide.tui.chat_export`'s).  Each runs in a worker of the screen where it waits for a
dialog; every history failure is shown, never raised into the app."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from tokentide.errors import TideError
from tokentide.sanitize import sanitize_title
from tokentide.tui.chat_use import ChatUse
from tokentide.tui.dialogs import ConfirmDialog, TextDialog
from tokentide.tui.widgets.keys import app_key_display
from tokentide.tui.widgets.sidebar import ConversationItem

if TYPE_CHECKING:
    from tokentide.backends.models import ModelInfo
    from tokentide.chat.tree import Turn
    from tokentide.history.settings import ConversationSettings
    from tokentide.tui.chat_screen import ChatScreen

__all__ = ["ChatCommands"]


class ChatCommands(ChatUse):
    """See the module docstring (the status line's figures and the history's waiting
    writes are :class:`~tokentide.tui.chat_use.ChatUse`'s)."""

    def __init__(self, screen: ChatScreen) -> None:
        super().__init__(screen)
        self._search = ""

    def _run(
        self, job: Callable[[], Awaitable[Any]], group: str, *, exclusive: bool = False
    ) -> None:
        self.screen.run_worker(job(), group=group, exclusive=exclusive)

    def _history_call(self, call: Callable[[], Any]) -> bool:
        try:
            call()
        except TideError as error:
            self.screen.history_problem(error)
            return False
        return True

    # -- opening and starting --------------------------------------------------------------

    def open_conversation(self, conversation_id: str) -> None:
        """Show a saved conversation (its branch on screen; every branch loaded)."""

        async def job() -> None:
            screen = self.screen
            await screen.wait_idle()
            if screen.store is None:
                return
            try:
                wanted = screen.session.open(conversation_id)
            except TideError as error:
                screen.notify(str(error), title="History", severity="error")
                return
            screen.editing = None
            screen.history_painted.clear()
            for turn in screen.session.branch:
                if turn.role == "user":
                    screen.composer.remember(turn.content)
            if wanted is not None:
                screen.use_profile(wanted, "Conversation settings")
            screen.status.clear()
            self.show_use()
            self.refresh_sidebar()
            await screen.shown.show_all()
            from tokentide.tui.widgets.markdown_view import settle_gc

            screen.call_after_refresh(settle_gc)

        self._run(job, "open", exclusive=True)

    async def new_conversation(self, own: ConversationSettings | None = None) -> None:
        """An empty conversation, from the chat's profile (or settings ``own``: a
        template's): nothing another conversation set carries over."""
        screen = self.screen
        await screen.wait_idle()
        self._fresh(own)
        screen.shown.welcome()
        screen.composer.focus()
        self.refresh_sidebar()

    def _fresh(self, own: ConversationSettings | None = None) -> None:
        screen = self.screen
        wanted = screen.session.new_conversation(own)
        if wanted is not None:
            screen.use_profile(wanted, "New conversation")
        if screen.editing is not None:
            screen.versions.cancel_edit()
        screen.shown.clear()
        screen.status.clear()

    def switch_profile(self, name: str) -> None:
        from tokentide.config.load import resolve_profile

        screen = self.screen
        try:
            profile = resolve_profile(screen.settings, name)  # the built-in local included
        except TideError as error:
            screen.notify(str(error), severity="error")
            return
        if screen.use_profile(profile, f"Profile {name}"):
            self._remember(profile=name, model=None)
            screen.notify(f"Now using profile {name}.", timeout=3)

    async def new_from_template(self, name: str) -> None:
        """A new, empty conversation with template ``name`` applied to its profile."""
        from tokentide.config.templates import start_from_template

        screen = self.screen
        try:
            start = start_from_template(screen.settings, name)
        except TideError as error:
            screen.notify(str(error), title=f"Template {name}", severity="error")
            return
        from tokentide.history.settings import ConversationSettings

        await screen.wait_idle()
        chosen = start.profile
        try:  # the backend first: a template whose profile cannot be built changes nothing
            from tokentide.backends.registry import create_backend

            await create_backend(chosen).aclose()
        except TideError as error:
            screen.notify(str(error), title=f"Template {name}", severity="error")
            return
        own = ConversationSettings(
            profile=None if chosen.name == screen.session.base.name else chosen.name,
            model=chosen.model,
            system_prompt=chosen.system,
            temperature=chosen.temperature,
            max_tokens=chosen.max_tokens,
            top_p=chosen.top_p,
            seed=chosen.seed,
        )
        await self.new_conversation(own)
        screen.notify(f"New conversation from template {name}.", timeout=3)

    def _remember(self, **changes: Any) -> None:
        """Save a change of profile or model as the conversation's own setting."""
        from tokentide.history.settings import ConversationSettings

        session = self.screen.session
        own = replace(session.own or ConversationSettings(), **changes)
        session.set_settings(own)

    # -- model and settings ----------------------------------------------------------------

    def switch_model(self) -> None:
        """Pick one of the server's models for this chat (listed live)."""
        from tokentide.backends.models import can_switch
        from tokentide.tui.model_picker import ModelPicker

        screen = self.screen
        profile = screen.profile
        if not can_switch(profile):
            palette = app_key_display(screen.app, "command_palette")
            screen.notify(
                f"Profile {profile.name} ({profile.api}) runs one model; "
                f"switch profile ({palette}) to use another.",
                title="Switch model",
                severity="warning",
            )
            return
        screen.app.push_screen(ModelPicker(profile), self._model_chosen)

    def _model_chosen(self, info: ModelInfo | None) -> None:
        from tokentide.backends.models import with_model

        screen = self.screen
        if info is None or info.id == screen.profile.model:
            return
        try:
            profile = with_model(screen.profile, info)
        except TideError as error:
            screen.notify(str(error), title="Switch model", severity="error")
            return
        if info.context_window:
            self.learnt_window(profile, info.context_window)
        if screen.use_profile(profile, "Switch model"):
            self._remember(model=info.id)
            screen.notify(f"Now using model {info.label()}.", timeout=3)

    def edit_settings(self) -> None:
        """The conversation's own settings, in a dialog; saved with the conversation."""
        from tokentide.config.load import BUILTIN_LOCAL
        from tokentide.tui.settings_dialog import ConversationSettingsDialog

        screen = self.screen
        session = screen.session
        names = list(screen.settings.profiles) or [session.base.name]
        if BUILTIN_LOCAL.name not in names:
            names.append(BUILTIN_LOCAL.name)
        dialog = ConversationSettingsDialog(session.own, session.profile, names)
        screen.app.push_screen(dialog, self._settings_chosen)

    def _settings_chosen(self, own: ConversationSettings | None) -> None:
        if own is None:
            return  # cancelled
        screen = self.screen
        wanted = screen.session.set_settings(own)
        if wanted is not None:
            screen.use_profile(wanted, "Conversation settings")
        screen.show_profile()
        screen.arm_checkpoint()  # a write that waits for another process's lock
        screen.notify("Settings saved for this conversation.", timeout=3)

    # -- versions: fork and delete ---------------------------------------------------------

    def _pointed_at(self) -> Turn | None:
        """The focused message's turn, else the last on screen (an edit is cancelled
        first, so that is a message the user sees); None while an answer streams."""
        screen = self.screen
        if screen.editing is not None:
            screen.versions.cancel_edit()
        if screen.busy():
            return None
        return screen.shown.focused_turn() or (screen.turns[-1] if screen.turns else None)

    def fork(self) -> None:
        """A new conversation from the focused message (else the last), opened."""
        screen = self.screen
        turn = self._pointed_at()
        if turn is None:
            return
        try:
            forked = screen.session.fork(turn.id)
        except TideError as error:
            screen.notify(str(error), title="Fork", severity="error")
            return
        self.open_conversation(forked)
        screen.notify("Forked: this is a new conversation; the old one is unchanged.", timeout=4)

    def delete_version(self) -> None:
        """Delete the focused message's version (and all after it), after asking."""

        async def job() -> None:
            screen = self.screen
            turn = self._pointed_at()
            if turn is None:
                return
            what = "prompt" if turn.role == "user" else "answer"
            question = f"Delete this version of the {what} and everything after it?"
            if not await screen.app.push_screen_wait(ConfirmDialog(question)):
                return
            screen.session.delete_branch(turn.id)
            screen.shown.render()
            self.show_use()
            self.refresh_sidebar()

        self._run(job, "dialog")

    # -- the sidebar -----------------------------------------------------------------------

    async def toggle_sidebar(self) -> None:
        screen = self.screen
        sidebar = screen.sidebar
        sidebar.display = not sidebar.display
        if sidebar.display:
            await sidebar.build()
            self.refresh_sidebar()
            sidebar.query_one("#conversations").focus()
        else:
            screen.composer.focus()

    def search(self, query: str) -> None:
        self._search = query.strip()
        self.refresh_sidebar()

    def refresh_sidebar(self) -> None:
        """Show the store's conversations (after every change to them) and, if writes
        are waiting for another process's lock, have the checkpoint retry them."""
        screen = self.screen
        screen.arm_checkpoint()
        store, sidebar = screen.store, screen.sidebar
        if store is None or not sidebar.display or not sidebar.built:
            return
        try:
            conversations = store.list_conversations(search=self._search or None, limit=200)
        except TideError as error:
            screen.history_problem(error)
            return
        items = [ConversationItem(str(c.id), c.title or "") for c in conversations]
        sidebar.show(items, current=screen.conversation_id)

    def _title_of(self, conversation_id: str) -> str:
        for item in self.screen.sidebar.items:
            if item.id == conversation_id:
                return item.title
        return ""

    def rename(self, conversation_id: str | None = None) -> None:
        async def job() -> None:
            screen = self.screen
            cid = conversation_id or screen.conversation_id
            if cid is None or screen.store is None:
                screen.notify("No conversation to rename yet.", timeout=3)
                return
            title = await screen.app.push_screen_wait(
                TextDialog("New title", sanitize_title(self._title_of(cid)))
            )
            if title and self._history_call(lambda: screen.store.rename(cid, title)):  # type: ignore[union-attr]
                self.refresh_sidebar()

        self._run(job, "dialog")

    def delete(self, conversation_id: str | None = None) -> None:
        async def job() -> None:
            screen = self.screen
            cid = conversation_id or screen.conversation_id
            store = screen.store
            if cid is None or store is None:
                screen.notify("No conversation to delete yet.", timeout=3)
                return
            title = sanitize_title(self._title_of(cid) or "this conversation", limit=60)
            if not await screen.app.push_screen_wait(ConfirmDialog(f"Delete “{title}”?")):
                return
            if cid == screen.conversation_id:
                await screen.wait_idle()
                self._fresh()
            self._history_call(lambda: store.delete(cid))
            self.refresh_sidebar()

        self._run(job, "dialog")
