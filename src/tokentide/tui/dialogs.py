"""Small modal dialogs: a yes/no confirmation and a one-line text prompt.

Each lays itself out (``DEFAULT_CSS``: a box of 60 cells in the middle of the screen);
the app's stylesheet gives ``.dialog-box`` its border and background.
"""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label

from tokentide.tui.plain import plain

__all__ = ["ConfirmDialog", "TextDialog"]

_LAYOUT = """
DIALOG {
    align: center middle;
}
DIALOG > .dialog-box {
    width: 60;
    height: auto;
    padding: 1 2;
}
DIALOG .dialog-question {
    margin: 0 0 1 0;
}
DIALOG .dialog-buttons {
    height: auto;
    align-horizontal: right;
}
DIALOG .dialog-buttons Button {
    margin-left: 2;
}
"""
"""The layout both dialogs share (``DIALOG`` stands for the dialog's class name: default
CSS is scoped to the class that declares it)."""


class ConfirmDialog(ModalScreen[bool]):
    """Ask a question; dismisses with True for yes."""

    DEFAULT_CSS = _LAYOUT.replace("DIALOG", "ConfirmDialog")

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,n", "answer(False)", "No"),
        Binding("y", "answer(True)", "Yes"),
    ]

    def __init__(self, question: str, *, yes: str = "Delete") -> None:
        super().__init__(classes="dialog")
        self.question = question
        self.yes = yes

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box"):
            yield Label(plain(self.question), classes="dialog-question")
            with Horizontal(classes="dialog-buttons"):
                yield Button(plain(f"{self.yes} (y)"), variant="error", id="yes")
                yield Button("Cancel (n)", id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)


class TextDialog(ModalScreen[str | None]):
    """Ask for one line of text; dismisses with it, or None when cancelled."""

    DEFAULT_CSS = _LAYOUT.replace("DIALOG", "TextDialog")

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, question: str, value: str = "") -> None:
        super().__init__(classes="dialog")
        self.question = question
        self.value = value

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box"):
            yield Label(plain(self.question), classes="dialog-question")
            yield Input(self.value, id="dialog-input")

    @on(Input.Submitted, "#dialog-input")
    def _submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip() or None)

    def action_cancel(self) -> None:
        self.dismiss(None)
