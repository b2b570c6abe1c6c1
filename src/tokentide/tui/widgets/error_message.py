"""A failed answer in the conversation: what failed, on which server, and what to do.

The note names the key that retries as the app displays keys (the chat screen passes
it, remapped by the config's ``[keys]``); everything in it from a server is sanitised.
Its layout is in ``DEFAULT_CSS``; the app's stylesheet only colours it.
"""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from tokentide.errors import BackendError
from tokentide.sanitize import sanitize

__all__ = ["ErrorMessage"]


class ErrorMessage(Static, can_focus=True):
    """What failed, on which server, and what to do."""

    DEFAULT_CSS = """
    ErrorMessage {
        height: auto;
        margin: 1 0 0 0;
        padding: 0 1;
    }
    """

    def __init__(self, error: BackendError | str, *, retry_key: str = "^r") -> None:
        if isinstance(error, BackendError):
            message, server, hint = error.message, error.server, error.hint
        else:
            message, server, hint = error, None, None
        text = Text()
        text.append("✗ ", style="bold")
        text.append(sanitize(message), style="bold")
        if server:
            text.append("\n  server: ")
            text.append(sanitize(server))
        if hint:
            text.append("\n  ")
            text.append(sanitize(hint), style="italic")
        text.append(f"\n  {sanitize(retry_key)} retries · your prompt is kept")
        self.error_text = message
        super().__init__(text, classes="message error", markup=False)
