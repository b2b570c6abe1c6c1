"""'Tools' (the palette): every source of tools of this conversation — MCP servers and
functions files — with its state and its tools, and the tools allowed "always" here.

It follows the toolbox as it changes (a server becoming ready, crashing, restarting):
it subscribes to :attr:`tokentide.tools.Toolbox.changes` while it is open.  Names,
descriptions and messages come from servers and files: they are shown as plain,
sanitised text.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from tokentide.chat.tool_text import KIND_NAMES
from tokentide.sanitize import sanitize_title

if TYPE_CHECKING:
    from tokentide.chat.tool_use import ToolUse
    from tokentide.tools import SourceStatus

__all__ = ["ToolsView", "tools_text"]

_STATE = {
    "starting": "starting…",
    "ready": "ready",
    "restarting": "restarting…",
    "failed": "failed",
    "stopped": "stopped",
}


def _source_lines(status: SourceStatus) -> list[str]:
    state = _STATE.get(status.state, status.state)
    kind = KIND_NAMES.get(status.kind, status.kind)
    head = f"{sanitize_title(status.name, 60)} · {kind} · {state}"
    if status.trust:
        head += " · trusted"
    if status.restarts:
        head += f" · restarted {status.restarts}×"
    lines = [head, f"  {sanitize_title(status.where, 100)}"]
    if status.message:
        lines.append(f"  {sanitize_title(status.message, 200)}")
    for spec in status.tools:
        about = sanitize_title(spec.description.split("\n")[0], 80) if spec.description else ""
        lines.append(f"  ▸ {sanitize_title(spec.name, 60)}" + (f": {about}" if about else ""))
    return lines


def tools_text(tools: ToolUse) -> str:
    """The view's text: each source with its state and tools, the rules, and what was
    allowed always in this conversation."""
    lines: list[str] = []
    for status in tools.toolbox.snapshot():
        lines.extend(_source_lines(status))
        lines.append("")
    rules = tools.rules
    lines.append(f"approve = {rules.policy}")
    if rules.allow_tools:
        lines.append("allowed: " + ", ".join(sanitize_title(p, 60) for p in rules.allow_tools))
    always = tools.approvals.allowed()
    if always:
        lines.append(
            "allowed always in this conversation: "
            + ", ".join(sanitize_title(f"{source}.{tool}", 60) for source, tool in always)
        )
    return "\n".join(lines)


class ToolsView(ModalScreen[None]):
    """See the module docstring.  Esc closes it."""

    DEFAULT_CSS = """
    ToolsView { align: center middle; }
    ToolsView > Vertical {
        width: 90%; max-width: 110; height: auto; max-height: 90%;
        border: round $accent; padding: 0 1; background: $surface;
    }
    ToolsView #tools-title { width: 1fr; text-style: bold; }
    ToolsView #tools-body-box { height: auto; max-height: 40; }
    ToolsView #tools-body { width: 1fr; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "close", "Close")]

    def __init__(self, tools: ToolUse) -> None:
        super().__init__()
        self.tools = tools
        self._unsubscribe: Callable[[], None] | None = None

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Tools", id="tools-title")
            with VerticalScroll(id="tools-body-box"):
                yield Static(tools_text(self.tools), id="tools-body", markup=False)

    def on_mount(self) -> None:
        self._unsubscribe = self.tools.toolbox.changes.subscribe(self._changed)

    def on_unmount(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()

    def _changed(self) -> None:
        self.query_one("#tools-body", Static).update(tools_text(self.tools))

    def action_close(self) -> None:
        self.dismiss(None)
