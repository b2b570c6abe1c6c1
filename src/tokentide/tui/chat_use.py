"""What the chat's status line says at rest (context used against the model's window,
prompt tokens, cost: :mod:`tokentide.meter`), and the history writes that wait for
another process's lock."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tokentide.errors import TideError

if TYPE_CHECKING:
    from tokentide.config.model import Profile
    from tokentide.tui.chat_screen import ChatScreen

__all__ = ["ChatUse"]

WindowKey = tuple[str, str | None, str | None]


class ChatUse:
    def __init__(self, screen: ChatScreen) -> None:
        self.screen = screen
        self._windows: dict[WindowKey, int | None] = {}
        self._history_waiting = False

    # -- context and cost ------------------------------------------------------------------

    @staticmethod
    def _key(profile: Profile) -> WindowKey:
        return (profile.api, profile.url, profile.model)

    def window(self) -> int | None:
        """The model's context window: the profile's ``context_window``, else what the
        server's model list said (learnt once per server and model)."""
        profile = self.screen.profile
        return profile.context_window or self._windows.get(self._key(profile))

    def learnt_window(self, profile: Profile, window: int) -> None:
        self._windows[self._key(profile)] = window

    def show_use(self) -> None:
        screen = self.screen
        meter = screen.session.meter
        screen.status.show_use(meter.line(self.window()))
        profile = screen.profile
        key = self._key(profile)
        learn = meter.last.prompt_tokens is not None and self.window() is None
        if learn and key not in self._windows:
            self._windows[key] = None  # asked once, whatever the answer
            screen.run_worker(self._learn_window(profile, key), group="context-window")

    async def _learn_window(self, profile: Profile, key: WindowKey) -> None:
        from tokentide.backends.models import configured_model, list_models

        try:
            models = await list_models(profile, timeout=10.0)
        except TideError:
            return  # no list, no window: the status line shows the context used alone
        info = configured_model(models, profile) or (models[0] if len(models) == 1 else None)
        if info is None or not info.context_window:
            return
        self._windows[key] = info.context_window
        screen = self.screen
        if self._key(screen.profile) == key and not screen.generating:
            screen.status.show_use(screen.session.meter.line(self.window()))

    # -- history writes that wait ----------------------------------------------------------

    def history_waiting(self) -> bool:
        store = self.screen.store
        return store is not None and bool(store.pending or self._history_waiting)

    def flush_history(self) -> None:
        """Retry the writes another process's lock kept out; say when they wait and
        when they have landed."""
        store = self.screen.store
        if store is None or not (store.pending or self._history_waiting):
            return
        try:
            store.flush_pending()
        except TideError as error:
            self.screen.history_problem(error)
        waiting = store.pending
        if waiting and not self._history_waiting:
            self.screen.notify(
                "Another process holds the history database: what you write and receive "
                "is kept in memory and saved as soon as it is free.",
                title="History busy",
                severity="warning",
                timeout=8,
            )
        elif not waiting and self._history_waiting:
            self.screen.notify("Everything that waited is saved now.", title="History")
        self._history_waiting = waiting > 0
