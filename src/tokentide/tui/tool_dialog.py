"""'Run this tool?': the approval dialog of a tool call the rules leave to the user.

It shows the tool, where it comes from (the MCP server or the functions file) and the
arguments as indented JSON, all sanitised (the model wrote them), and dismisses with a
:class:`~tokentide.chat.tool_use.Choice`: run once (``y`` / Enter), always for this
tool in this conversation (``a``), or deny (``n``) with an optional reason the model is
told.  Esc (or ctrl+c) stops the whole answer, as everywhere in the chat: the dialog
closes with None.  Nothing runs until the user chooses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from tokentide.backends.events import ToolCallRequested
from tokentide.chat.tool_text import call_text, pretty_arguments, source_text
from tokentide.chat.tool_use import Choice
from tokentide.sanitize import sanitize_title

if TYPE_CHECKING:
    from tokentide.tools import ToolSource

__all__ = ["ToolApprovalDialog"]


class ToolApprovalDialog(ModalScreen[Choice | None]):
    """Ask whether ``call`` (from ``source``) may run (None: the user stopped the
    answer, or it was stopped while asking)."""

    DEFAULT_CSS = """
    ToolApprovalDialog { align: center middle; }
    ToolApprovalDialog > Vertical {
        width: 90%; max-width: 100; height: auto; max-height: 90%;
        border: round $warning; padding: 0 1; background: $surface;
    }
    ToolApprovalDialog #tool-title { width: 1fr; text-style: bold; }
    ToolApprovalDialog #tool-where { width: 1fr; color: $text-muted; }
    ToolApprovalDialog #tool-arguments-box { height: auto; max-height: 20; margin-top: 1; }
    ToolApprovalDialog #tool-arguments { width: 1fr; background: $boost; padding: 0 1; }
    ToolApprovalDialog #tool-reason { margin-top: 1; }
    ToolApprovalDialog #tool-buttons { height: auto; align-horizontal: right; margin-top: 1; }
    ToolApprovalDialog #tool-buttons Button { margin-left: 1; min-width: 10; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "run_once", "Run once", show=False),
        Binding("a", "always", "Always", show=False),
        Binding("n", "deny", "Deny", show=False),
        Binding("escape", "stop", "Stop the answer", show=False),
        Binding("ctrl+c", "stop", "Stop the answer", show=False, priority=True),
    ]

    def __init__(self, call: ToolCallRequested, source: ToolSource) -> None:
        super().__init__()
        self.call = call
        self.source = source

    def compose(self) -> ComposeResult:
        where = source_text(self.source)
        if self.source.where:
            where += f" ({sanitize_title(self.source.where, 80)})"
        with Vertical():
            yield Label(
                f"Run {call_text(self.call, self.source, limit=60)}?", id="tool-title", markup=False
            )
            yield Label(f"from the {where}", id="tool-where", markup=False)
            with VerticalScroll(id="tool-arguments-box"):
                yield Static(pretty_arguments(self.call), id="tool-arguments", markup=False)
            yield Input(placeholder="Reason, if you deny it (the model is told)", id="tool-reason")
            with Horizontal(id="tool-buttons"):
                yield Button("Run once (y)", id="tool-once", variant="primary")
                yield Button("Always for this tool (a)", id="tool-always")
                yield Button("Deny (n)", id="tool-deny", variant="error")
                yield Button("Stop (esc)", id="tool-stop")

    def on_mount(self) -> None:
        self.query_one("#tool-once", Button).focus()

    def _reason(self) -> str:
        return self.query_one("#tool-reason", Input).value

    # y / a / n typed into the reason field are letters of the reason (the Input takes
    # them first); everywhere else they choose.

    def action_run_once(self) -> None:
        self.dismiss(Choice(run=True))

    def action_always(self) -> None:
        self.dismiss(Choice(run=True, always=True))

    def action_deny(self) -> None:
        self.dismiss(Choice(run=False, reason=self._reason()))

    def action_stop(self) -> None:
        self.dismiss(None)

    @on(Input.Submitted, "#tool-reason")
    def _submitted(self) -> None:
        self.dismiss(Choice(run=False, reason=self._reason()))

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "tool-once":
            self.dismiss(Choice(run=True))
        elif event.button.id == "tool-always":
            self.dismiss(Choice(run=True, always=True))
        elif event.button.id == "tool-stop":
            self.dismiss(None)
        else:
            self.dismiss(Choice(run=False, reason=self._reason()))
