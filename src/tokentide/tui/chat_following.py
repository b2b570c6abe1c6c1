"""Following the newest text: the "new text" badge, and End to go back to the end.

The conversation view follows the end by itself while the user is there (it is
anchored); this is the part the user sees when they have scrolled away: a badge over
the end of the conversation says that text is arriving below ("↓ new text · end"), or
that the latest is below ("↓ latest · end": the key as the app displays keys), and
that key, ctrl+end or a click brings the view back.  No timer runs while the chat is idle (issue 17): the badge follows scrolling
and content changes, and polls at 5 Hz only while an answer streams.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.timer import Timer

from tokentide.tui.conversation_view import NewTextBadge
from tokentide.tui.plain import plain

if TYPE_CHECKING:
    from tokentide.tui.chat_screen import ChatScreen

__all__ = ["Following"]


class Following:
    """The chat screen's badge and its checks (one per screen)."""

    def __init__(self, screen: ChatScreen) -> None:
        self.screen = screen
        self._timer: Timer | None = None
        self._badge: NewTextBadge | None = None
        self._end = "end"
        """The key that follows again, as the app displays keys."""

    def start(self) -> None:
        """Once the screen is mounted: hide the badge, watch the view (polling paused)."""
        screen = self.screen
        self._badge = screen.query_one("#new-text", NewTextBadge)
        self._badge.display = False
        self._end = screen.key_for("follow")
        self._timer = screen.set_interval(0.2, self.check, pause=True)
        screen.watch(screen.view, "scroll_y", self._scrolled, init=False)
        screen.watch(screen.view, "virtual_size", self._scrolled, init=False)

    def streaming(self, generating: bool) -> None:
        """An answer started (poll) or ended (stop polling, check once)."""
        if self._timer is None:
            return
        if generating:
            self._timer.resume()
        else:
            self._timer.pause()
            self.check()

    def _scrolled(self) -> None:
        screen = self.screen
        if not screen.generating:  # while streaming the timer checks at 5 Hz
            self.check()
        if screen.shown.earlier:
            screen.shown.near_top()

    def check(self) -> None:
        """Show the badge when the view is away from the end, hide it when it is not."""
        badge = self._badge
        if badge is None:
            return
        view = self.screen.view
        away = not view.following and view.max_scroll_y > 0 and not view.is_vertical_scroll_end
        if badge.display != away:
            badge.display = away
        if away:
            what = "new text" if self.screen.generating else "latest"
            badge.update(plain(f"↓ {what} · {self._end}"))  # a remapped key is from a file

    def follow(self) -> None:
        """Back to the end, following it (and the answer streaming in) from now on."""
        screen = self.screen
        if screen.generating:
            screen.view.follow_stream()
        else:
            screen.view.follow()
        self.check()
