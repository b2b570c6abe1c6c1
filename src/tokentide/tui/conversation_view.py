"""The scrolling conversation, which follows the newest text and folds far turns
away while an answer streams, and the "new text" badge shown when the user has
scrolled away from the end."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from textual import events
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Label

__all__ = ["ConversationView", "FoldedHistory", "NewTextBadge"]


class FoldedHistory(Widget):
    """Stands in, at its exact height, for the turns folded away during a stream."""


class ConversationView(VerticalScroll):
    """The scrolling conversation.  Anchored: it follows the newest text while the user
    is at the bottom, at any token rate (Textual's compositor keeps an anchored view at
    the end on every reflow); scrolling up releases it, End or a new prompt restores it.

    While an answer streams and the view follows it, every turn more than a screen above
    the viewport is *folded*: hidden, with one :class:`FoldedHistory` spacer of the same
    height in its place.  The growing answer changes its height many times a second, and
    each change lays out the whole conversation; with 50 earlier answers that layout
    cost 10.5 ms instead of 4.6 ms, and layouts were in every worst event-loop stall
    (``docs/performance.md``).  Folded, a layout costs what a short conversation's does.
    The view's virtual height and the scroll position are unchanged, so nothing moves on
    screen; any scroll away from the end, a resize, or the end of the stream unfolds.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("end,ctrl+end", "follow", "Latest", id="follow", show=False),
    ]

    DEFAULT_CSS = """
    ConversationView {
        height: 1fr;
        padding: 0 1;
        scrollbar-size-vertical: 1;
    }
    """

    FOLD_MARGIN_SCREENS: ClassVar[float] = 1.0
    """Turns within this many viewport heights above the viewport stay unfolded."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._folded: list[Widget] = []
        self._spacer: FoldedHistory | None = None
        self._fold_width = 0

    @property
    def following(self) -> bool:
        return self.is_anchored and not self._anchor_released

    @property
    def folded(self) -> int:
        """How many widgets are folded away now."""
        return len(self._folded)

    def follow(self) -> None:
        self.anchor()
        self.scroll_end(animate=False, immediate=True)

    def action_follow(self) -> None:
        self.follow()

    def follow_stream(self) -> None:
        """:meth:`follow`, and :meth:`fold` once the layout has caught up (an answer is
        streaming into the view)."""
        self.follow()
        self.call_after_refresh(self.fold)

    def fold(self) -> None:
        """Fold the turns far above the viewport (only while following)."""
        if self._folded or not self.following or not self.is_attached:
            return
        limit = self.scroll_y - self.FOLD_MARGIN_SCREENS * self.scrollable_content_region.height
        flow = [
            child
            for child in self.children
            if child.display and child.styles.dock == "none" and child.styles.overlay == "none"
        ]
        count = 0
        for child in flow[:-1]:  # the last (streaming) widget always stays
            if child.virtual_region_with_margin.bottom > limit:
                break
            count += 1
        if count < 2:
            return  # not worth a spacer
        kept = flow[count]
        height = kept.virtual_region.y - kept.styles.margin.top
        if height <= 0:
            return
        spacer = FoldedHistory()
        spacer.styles.height = height
        self._spacer = spacer
        self._folded = flow[:count]
        self._fold_width = self.size.width
        self.mount(spacer, before=0)
        for child in self._folded:
            child.display = False

    def unfold(self) -> None:
        """Show the folded turns again, in the same frame as the spacer goes."""
        spacer, self._spacer = self._spacer, None
        folded, self._folded = self._folded, []
        if spacer is not None:
            spacer.display = False
            spacer.remove()
        for child in folded:
            child.display = True

    def release_anchor(self) -> None:
        self.unfold()  # the user scrolls away from the end: show everything
        super().release_anchor()

    def on_resize(self, event: events.Resize) -> None:
        # Sent for every change of the virtual height too; only a new width re-wraps the
        # folded turns (their heights were measured at the old one).
        if self._folded and event.size.width != self._fold_width:
            self.unfold()


class NewTextBadge(Label):
    """ "↓ new text" shown while the user has scrolled away from the end; a click on it
    goes back to the end (:class:`NewTextBadge.Clicked`).  Where it floats (docked, offset
    above the widgets under the conversation) is the screen's layout to decide."""

    DEFAULT_CSS = """
    NewTextBadge {
        width: auto;
        padding: 0 1;
    }
    """

    @dataclass
    class Clicked(Message):
        """The badge was clicked: go back to the end of the conversation."""

        badge: NewTextBadge

        @property
        def control(self) -> NewTextBadge:
            return self.badge

    def on_click(self) -> None:
        self.post_message(self.Clicked(self))
