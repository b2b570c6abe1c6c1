"""A prompt in the conversation, as sent: long ones shortened on screen, the exact text kept.

A pasted log of a hundred thousand lines is a prompt like any other, but painting it
whole would make the conversation slow to lay out and to scroll: the widget shows the
first :data:`SHOW_LINES` lines (at most :data:`SHOW_CHARS` characters) and says how much
more there is, while :attr:`UserMessage.source` (what is copied, edited and resent) stays
the whole prompt.  Its layout is in ``DEFAULT_CSS``; the app's stylesheet only colours it.
"""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from tokentide.sanitize import sanitize

__all__ = ["SHOW_CHARS", "SHOW_LINES", "UserMessage"]

SHOW_LINES = 200
"""A prompt longer than this shows its first lines and a count of the rest."""
SHOW_CHARS = 20_000


class UserMessage(Static, can_focus=True):
    """A prompt as sent (long ones shortened on screen; the exact text is kept)."""

    DEFAULT_CSS = """
    UserMessage {
        height: auto;
        margin: 1 0 0 0;
        padding: 0 1;
    }
    """

    def __init__(self, prompt: str, *, id: str | None = None) -> None:
        self.prompt = prompt
        self._versions = ""
        super().__init__(self._display(prompt), id=id, classes="message user", markup=False)

    def set_versions(self, versions: str) -> None:
        """``‹ 2/3 ›`` under the prompt when it has other versions ("": none)."""
        if versions != self._versions:
            self._versions = versions
            text = self._display(self.prompt)
            if versions:
                text.append(f"\n{versions}", style="bold dim")
            self.update(text)

    @staticmethod
    def _display(prompt: str) -> Text:
        shown = prompt[:SHOW_CHARS]
        lines = shown.split("\n")
        rest_lines = prompt.count("\n") + 1 - min(len(lines), SHOW_LINES)
        if len(lines) > SHOW_LINES:
            shown = "\n".join(lines[:SHOW_LINES])
        text = Text(sanitize(shown))
        if len(shown) < len(prompt):
            text.append(
                f"\n… {len(prompt) - len(shown):,} more characters ({max(rest_lines, 0):,} lines)",
                style="italic",
            )
        return text

    @property
    def source(self) -> str:
        return self.prompt
