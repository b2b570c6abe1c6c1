"""Text from outside (servers, config, history) shown as data, never as Textual markup."""

from __future__ import annotations

from typing import cast

from textual.app import App
from textual.content import Content
from textual.notifications import SeverityLevel

from tokentide.sanitize import sanitize, sanitize_for_clipboard


def plain(text: str) -> Content:
    """``text`` sanitised and wrapped so that Textual shows it literally ("[/]" stays "[/]")."""
    return Content(sanitize(text))


class PlainNotifications:
    """Mixed into every tide ``App``: a notification is data, never markup.

    Textual parses a toast's message as markup by default, and ``Widget.notify`` passes
    ``markup=True`` on explicitly, so a server's error text with "[/]" in it crashed the
    app and "[@click=...]" made a clickable action.  Overriding the one place every
    notification goes through (``App.notify``) makes that impossible to forget at a call
    site; the message and title are sanitised here too."""

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = False,
    ) -> None:
        del markup  # never: see the class docstring
        App.notify(
            self,  # type: ignore[arg-type]
            sanitize(message),
            title=sanitize(title),
            severity=severity,
            timeout=timeout,
            markup=False,
        )

    def action_help_quit(self) -> None:
        """Textual's ctrl+c hint ("Press ctrl+q to quit") is written in markup, which this
        mixin shows literally: the same hint as plain text."""
        app = cast("App[object]", self)
        for key, active in app.active_bindings.items():
            if active.binding.action in ("quit", "app.quit"):
                self.notify(f"Press {key} to quit the app", title="Do you want to quit?")
                return


class SafeClipboard:
    """Mixed into every tide ``App``: whatever reaches the clipboard (our copy commands,
    Textual's own copy of a mouse selection, a TextArea's ctrl+c) is sanitised for it
    (:func:`tokentide.sanitize.sanitize_for_clipboard`: no ESC, C1, ^C, CR or bracketed
    paste end)."""

    def copy_to_clipboard(self, text: str) -> None:
        App.copy_to_clipboard(cast("App[object]", self), sanitize_for_clipboard(text))
