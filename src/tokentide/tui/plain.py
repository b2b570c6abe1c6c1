"""Text from outside (servers, config, history) shown as data, never as Textual markup."""

from __future__ import annotations

from textual.content import Content

from tokentide.sanitize import sanitize


def plain(text: str) -> Content:
    """``text`` sanitised and wrapped so that Textual shows it literally ("[/]" stays "[/]")."""
    return Content(sanitize(text))
