""" "Switch model": the server's models, listed live, one picked for this chat.

A modal over the chat screen.  It asks the profile's server for its models
(:func:`tokentide.backends.models.list_models`) in a worker, so the app stays responsive
and Esc closes the dialog (cancelling the request) at any time; a failure is shown in
the dialog as one human line, never as a crash.  Every name shown comes from a server
and is sanitised (:meth:`ModelInfo.label`); what is sent back is the raw ``id``.
"""

from __future__ import annotations

from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, LoadingIndicator, OptionList
from textual.widgets.option_list import Option

from tokentide.backends.models import ModelInfo, configured_model, list_models
from tokentide.config.model import Profile
from tokentide.errors import TideError
from tokentide.sanitize import sanitize_title
from tokentide.tui.plain import plain
from tokentide.tui.widgets.keys import action_key_display

__all__ = ["ModelPicker"]


class ModelPicker(ModalScreen[ModelInfo | None]):
    """Lists ``profile``'s models; dismisses with the one chosen, or None."""

    DEFAULT_CSS = """
    ModelPicker { align: center middle; }
    ModelPicker > Vertical {
        width: 90%; max-width: 110; height: auto; max-height: 80%;
        border: round $accent; padding: 0 1; background: $surface;
    }
    ModelPicker #model-title { width: 1fr; text-style: bold; }
    ModelPicker #model-note { width: 1fr; color: $text-muted; }
    ModelPicker OptionList { height: auto; max-height: 24; border: none; }
    ModelPicker LoadingIndicator { height: 1; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, profile: Profile) -> None:
        super().__init__()
        self.profile = profile
        self.models: list[ModelInfo] = []
        self.error: str | None = None

    def compose(self) -> ComposeResult:
        where = sanitize_title(self.profile.url or self.profile.api, 80)
        with Vertical():
            yield Label(plain(f"Models of {where}"), id="model-title")
            yield LoadingIndicator()
            yield OptionList(id="model-list")
            yield Label(plain("Asking the server…"), id="model-note")

    def on_mount(self) -> None:
        self.query_one(OptionList).display = False
        self._load()

    @work(exclusive=True, group="list-models")
    async def _load(self) -> None:
        try:
            models = await list_models(self.profile)
        except TideError as error:
            self._show_error(error)
            return
        self.models = [m for m in models if m.ready]
        self._show_models()

    def _key(self, action: str) -> str:
        """This dialog's key for ``action``, as the app displays keys."""
        return action_key_display(self.app, self.BINDINGS, action)

    def _show_error(self, error: TideError) -> None:
        self.query_one(LoadingIndicator).display = False
        self.error = sanitize_title(str(error), 400)  # the message and its hint
        note = self.query_one("#model-note", Label)
        note.update(plain(f"{self.error}  ({self._key('cancel')} closes)"))

    def _show_models(self) -> None:
        self.query_one(LoadingIndicator).display = False
        note = self.query_one("#model-note", Label)
        if not self.models:
            note.update(
                plain(f"The server lists no models that are ready.  ({self._key('cancel')} closes)")
            )
            return
        current = configured_model(self.models, self.profile)
        options = self.query_one(OptionList)
        for index, info in enumerate(self.models):
            options.add_option(Option(plain(_line(info, info is current)), id=str(index)))
        options.display = True
        options.highlighted = 0 if current is None else self.models.index(current)
        options.focus()
        choose = action_key_display(self.app, OptionList.BINDINGS, "select")
        note.update(
            plain(f"{choose} switches this chat to the model · {self._key('cancel')} cancels")
        )

    @on(OptionList.OptionSelected, "#model-list")
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(self.models[event.option_index])

    def action_cancel(self) -> None:
        self.workers.cancel_group(self, "list-models")
        self.dismiss(None)


def _line(info: ModelInfo, current: bool) -> str:
    parts = [("● " if current else "  ") + info.label()]
    if info.context_window:
        parts.append(f"{info.context_window:,} ctx")
    if detail := info.detail_text(80):
        parts.append(detail)
    return "  ·  ".join(parts)
