"""One tool call inside an answer: a compact line, expandable to the whole arguments and
result.

    ▸ calc.add(a=2, b=3) → 5            (Enter or a click: the details)
    ▸ files.read(path='notes.md') …     (running)
    ▸ shell.run(cmd='rm -rf /') ✗ not run: the user did not allow it

Expanded, the arguments are indented JSON and the result is shown as received; a long
result is folded to its first :data:`FOLD_LINES` lines.  Everything is untrusted (the
model wrote the call, the tool its result) and is sanitised before it is shown.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import Static

from tokentide.backends.events import ToolCallRequested
from tokentide.backends.tool_spec import ToolResult
from tokentide.chat.tool_text import call_text, pretty_arguments, tool_line
from tokentide.sanitize import sanitize

if TYPE_CHECKING:
    from tokentide.tools import ToolSource

__all__ = ["FOLD_LINES", "ToolBlock"]

FOLD_LINES = 20
"""Lines of a result shown expanded before the rest is folded."""


class ToolBlock(Vertical, can_focus=True):
    """See the module docstring."""

    DEFAULT_CSS = """
    ToolBlock { height: auto; padding: 0 1; }
    ToolBlock > .tool-line { height: auto; color: $text-muted; }
    ToolBlock.-error > .tool-line { color: $text-error; }
    ToolBlock > .tool-details { height: auto; display: none; padding: 0 2; }
    ToolBlock.-expanded > .tool-details { display: block; }
    ToolBlock:focus > .tool-line { text-style: bold; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "toggle_details", "Details", show=False),
    ]

    def __init__(
        self,
        call: ToolCallRequested,
        source: ToolSource | None = None,
        *,
        result: ToolResult | None = None,
        denied: str | None = None,
        stopped: str | None = None,
    ) -> None:
        super().__init__(classes="tool-block")
        self.call = call
        self.source = source
        self.result = result
        self.denied = denied
        self.stopped = stopped
        """Why it has no result: the answer was stopped while it ran or before."""
        self._line = Static(self._line_text(), classes="tool-line", markup=False)
        self._details = Static("", classes="tool-details", markup=False)
        self.set_class(self._failed, "-error")

    @property
    def _failed(self) -> bool:
        return (
            self.denied is not None
            or self.stopped is not None
            or (self.result is not None and self.result.is_error)
        )

    def _line_text(self) -> str:
        if self.stopped is not None:
            return f"▸ {call_text(self.call, self.source)} ✗ {self.stopped}"
        return tool_line(self.call, self.source, self.result, denied=self.denied)

    def stop(self, why: str) -> None:
        """The answer ended without this call's result (``why``: how)."""
        self.stopped = why
        self._line.update(self._line_text())
        self.set_class(True, "-error")

    def compose(self) -> ComposeResult:
        yield self._line
        yield self._details

    def set_result(self, result: ToolResult, *, denied: str | None = None) -> None:
        """The call ended (or was refused): show its result."""
        self.result, self.denied = result, denied
        self._line.update(self._line_text())
        self.set_class(self._failed, "-error")
        if self.has_class("-expanded"):
            self._details.update(self.details_text())

    def details_text(self) -> str:
        """The whole arguments, and the result folded past :data:`FOLD_LINES` lines."""
        lines = ["arguments:", pretty_arguments(self.call)]
        if self.stopped is not None:
            lines.append(self.stopped)
        elif self.denied is not None:
            lines += ["not run:", sanitize(self.denied)]
        elif self.result is not None:
            body = sanitize(self.result.content).split("\n")
            shown = body[:FOLD_LINES]
            if len(body) > FOLD_LINES:
                shown.append(f"… {len(body) - FOLD_LINES} more lines (copy the answer for all)")
            lines += ["error:" if self.result.is_error else "result:", *shown]
        else:
            lines.append("running…")
        return "\n".join(lines)

    def action_toggle_details(self) -> None:
        expanded = not self.has_class("-expanded")
        if expanded:
            self._details.update(self.details_text())
        self.set_class(expanded, "-expanded")

    def on_click(self, event: events.Click) -> None:
        event.stop()
        self.action_toggle_details()
