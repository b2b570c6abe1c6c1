"""The command palette's "Switch profile" and "New conversation from template" commands,
with names shown as data.

Textual's system commands parse their title and help as markup (``Content.from_markup``),
and a profile's name, URL and model come from the config: a profile named "[/]" crashed the
palette (issue 10).  This provider builds each hit from :func:`plain` content instead, and
matches against the same sanitised text it shows, so highlights line up."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from typing import TYPE_CHECKING, Any, cast

from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.content import Content
from textual.style import Style

from tokentide.sanitize import sanitize

if TYPE_CHECKING:
    from textual.fuzzy import Matcher

_MATCH = Style(bold=True, underline=True)


class _PlainCommands(Provider):
    """Hits built from plain content; subclasses yield ``(title, detail, callback)``."""

    def _commands(self) -> Iterator[tuple[str, Content, Callable[[], Any]]]:
        raise NotImplementedError

    async def discover(self) -> Hits:
        for title, detail, callback in self._commands():
            # Hit.help is typed str, but the palette passes Content through unparsed.
            yield DiscoveryHit(Content(title), callback, text=title, help=cast(str, detail))

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, detail, callback in self._commands():
            score = matcher.match(title)
            if score > 0:
                yield Hit(
                    score, _highlight(matcher, title), callback, text=title, help=cast(str, detail)
                )


class ProfileCommands(_PlainCommands):
    """One "Switch profile: <name>" hit per profile other than the one in use, the
    built-in ``local`` included."""

    def _commands(self) -> Iterator[tuple[str, Content, Callable[[], Any]]]:
        from tokentide.tui.chat_screen import ChatScreen

        chat = self.screen
        settings = getattr(self.app, "settings", None)
        if not isinstance(chat, ChatScreen) or settings is None:
            return
        from tokentide.config.load import BUILTIN_LOCAL

        # The built-in embedded model is always offered, once (a config may define its own
        # "local", which then is the one offered).
        profiles = {BUILTIN_LOCAL.name: BUILTIN_LOCAL, **settings.profiles}
        for name in sorted(profiles):
            if name == chat.profile.name:
                continue
            profile = profiles[name]
            title = sanitize(f"Switch profile: {name}")
            detail = sanitize(f"{profile.api} · {profile.url or ''} · {profile.model or ''}")
            yield title, Content(detail), partial(chat.commands.switch_profile, name)


class TemplateCommands(_PlainCommands):
    """One "New conversation from template: <name>" hit per ``[templates.NAME]``."""

    def _commands(self) -> Iterator[tuple[str, Content, Callable[[], Any]]]:
        from tokentide.tui.chat_screen import ChatScreen

        chat = self.screen
        settings = getattr(self.app, "settings", None)
        if not isinstance(chat, ChatScreen) or settings is None:
            return
        for name in sorted(settings.templates):
            template = settings.templates[name]
            title = sanitize(f"New conversation from template: {name}")
            said = [
                f"profile {template.profile}" if template.profile else "",
                f"model {template.model}" if template.model else "",
                f"system: {template.system}" if template.system else "",
            ]
            detail = sanitize(" · ".join(part for part in said if part)[:160])
            yield title, Content(detail), partial(chat.commands.new_from_template, name)


def _highlight(matcher: Matcher, title: str) -> Content:
    """``title`` literally, with the letters the query matched underlined."""
    content = Content(title)
    _score, offsets = matcher.fuzzy_search.match(matcher.query, title)
    for offset in offsets:
        content = content.stylize(_MATCH, offset, offset + 1)
    return content
