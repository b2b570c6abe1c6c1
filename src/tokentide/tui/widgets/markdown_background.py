"""The background renderer of saved Markdown messages: renders the ones that can become
visible soon, in short slices, without repainting anything on screen (issue 17).

One per app (:func:`renderer_of`); :func:`rendering_settled` is what tests and
benchmarks wait for.  It drives :class:`~tokentide.tui.widgets.markdown_view.
MarkdownMessage` through that widget's own rendering methods.
"""

from __future__ import annotations

import weakref
from time import perf_counter
from typing import TYPE_CHECKING, Any, ClassVar

from textual.app import App
from textual.geometry import Region
from textual.timer import Timer
from textual.widget import Widget

if TYPE_CHECKING:
    from tokentide.tui.widgets.markdown_view import MarkdownMessage

__all__ = ["renderer_of", "rendering_settled"]


class _BackgroundRenderer:
    """Renders the finished messages of one app that can become visible soon.

    One per app, so that 500 messages opened at once become one stream of ≤ 8 ms slices
    rather than 500 callbacks ready in the same event-loop iteration (issue 17):

    * Only messages within :attr:`WINDOW_SCREENS` viewport heights above or below their
      scroll container's viewport are rendered, nearest first; the rest keep their
      estimated height until the user scrolls towards them (a watcher on the
      container's ``scroll_y`` extends the window every half screen scrolled).  A
      message that becomes visible before it is reached renders itself when painted.
    * Height corrections (estimate → real) are applied in batches, one layout each;
      corrections above the viewport move the scroll position by the same amount, so
      what is on screen stays in place (unless the view follows the end, which Textual
      keeps at the bottom anyway).  Rendering itself refreshes nothing.
    * Complete messages outside the window keep their rendered lines only up to
      :attr:`KEEP_LINES` lines in all (nearest kept); the others drop them and render
      again when they come back into the window.
    """

    SLICE: ClassVar[float] = 0.008
    PAUSE: ClassVar[float] = 0.004
    WINDOW_SCREENS: ClassVar[float] = 2.0
    """The window: this many viewport heights above and below the viewport …"""
    WINDOW_MIN_ROWS: ClassVar[int] = 300
    """… and at least this many rows: a short conversation renders whole (a few dozen
    milliseconds), so scrolling through it never corrects a height."""
    KEEP_LINES: ClassVar[int] = 2_000
    """Rendered lines kept for complete messages outside the window, nearest first."""
    FLUSH_GAP: ClassVar[float] = 0.5
    """Seconds between two batches of off-screen height corrections (each is a layout
    of the whole conversation: ~0.1 s with 1,000 messages)."""
    RELAYOUT_INTERVAL: ClassVar[float] = 1.0
    """While a window takes longer to render, a batch of corrections at most this often."""
    WAIT_LAYOUTS: ClassVar[int] = 3
    """Ticks that wait for a pending layout before arranging the container themselves."""

    def __init__(self, app: App[Any]) -> None:
        self._app = weakref.ref(app)
        self.pending: weakref.WeakSet[MarkdownMessage] = weakref.WeakSet()
        """Complete messages whose lines are not (all) rendered at the current width."""
        self.rendered: weakref.WeakSet[MarkdownMessage] = weakref.WeakSet()
        """Complete messages holding rendered lines (candidates for dropping)."""
        self._relayout: list[weakref.ref[MarkdownMessage]] = []
        self._relayout_at = 0.0
        self._flushed_at = -1e9
        self._timer: Timer | None = None
        self._watched: weakref.WeakKeyDictionary[Widget, float] = weakref.WeakKeyDictionary()
        """Scroll containers watched, with the ``scroll_y`` the window was last taken at."""
        self._containers: weakref.WeakKeyDictionary[
            MarkdownMessage, tuple[object, Widget | None]
        ] = weakref.WeakKeyDictionary()
        """Each message's ``(parent, scroll container)`` found last (:meth:`_container`)."""
        self.stale = False
        """The last look at the window met a pending layout."""
        self._waited = 0
        """Ticks in a row that waited for a layout."""
        self._waiting = False
        """A look after the next refresh is scheduled."""

    @property
    def idle(self) -> bool:
        """Nothing scheduled: what is near the viewport is rendered."""
        return self._timer is None and not self._waiting

    def add(self, message: MarkdownMessage) -> None:
        self.pending.add(message)
        self.rendered.discard(message)
        self._watch(message)
        self._arm()

    def done(self, message: MarkdownMessage) -> None:
        """``message`` is complete and rendered (by itself: painted, or streamed)."""
        self.pending.discard(message)
        self.rendered.add(message)
        self._watch(message)

    def _container(self, message: MarkdownMessage) -> Widget | None:
        """The nearest scrolling ancestor of ``message`` (the conversation), if any;
        looked up again only when the message has moved to another parent."""
        parent = message.parent
        cached = self._containers.get(message)
        if cached is not None and cached[0] is parent:
            return cached[1]
        node = parent
        while isinstance(node, Widget):
            if node.styles.overflow_y in ("auto", "scroll"):
                break
            node = node.parent
        found = node if isinstance(node, Widget) else None
        self._containers[message] = (parent, found)
        return found

    def _watch(self, message: MarkdownMessage) -> None:
        container = self._container(message)
        if container is not None and container not in self._watched:
            self._watched[container] = container.scroll_y
            container.watch(container, "scroll_y", self._scrolled, init=False)

    def _scrolled(self) -> None:
        if self._timer is not None or not (self.pending or self.rendered):
            return
        for container, taken_at in self._watched.items():
            if abs(container.scroll_y - taken_at) * 2 >= max(1, container.size.height):
                self._arm()
                return

    def _after_layout(self) -> None:
        self._waiting = False
        self._arm()

    def _arm(self, delay: float | None = None) -> None:
        app = self._app()
        if self._timer is None and app is not None and (self.pending or self.rendered):
            self._timer = app.set_timer(
                self.PAUSE if delay is None else delay, self._tick, name="markdown-prerender"
            )

    def _distances(
        self, messages: weakref.WeakSet[MarkdownMessage]
    ) -> list[tuple[int, MarkdownMessage]]:
        """``(rows from the viewport, message)`` for laid-out messages, nearest first.

        Positions come from the scroll container's arrangement (which the compositor
        caches and reuses for its next layout), not from the screen's map of every
        widget, which Textual would rebuild after each layout for 1,000+ widgets.
        """
        out: list[tuple[int, int, MarkdownMessage]] = []
        views: dict[Widget, tuple[dict[Widget, Region], int, int] | None] = {}
        current = self._waited < self.WAIT_LAYOUTS
        for order, message in enumerate(list(messages)):
            if not message.is_attached:
                messages.discard(message)
                continue
            container = self._container(message)
            if container is None:
                continue
            if container in views:
                view = views[container]
            else:
                regions = _child_regions(container, current=current)
                if regions is None:
                    self.stale = True
                    view = None
                else:
                    self._watched[container] = container.scroll_y
                    top = round(container.scroll_y)
                    view = (regions, top, top + container.scrollable_content_region.height)
                views[container] = view
            if view is None:
                continue  # a layout is pending: after it
            regions, view_y, view_bottom = view
            region = regions.get(_top(message, container))
            if region is None:
                continue  # not displayed (folded away) or not laid out yet
            if region.bottom <= view_y:
                distance = view_y - region.bottom
            elif region.y >= view_bottom:
                distance = region.y - view_bottom
            else:
                distance = 0
            out.append((distance, -order, message))
        out.sort(key=lambda item: (item[0], item[1]))
        return [(distance, message) for distance, _, message in out]

    def _margin(self, message: MarkdownMessage) -> int:
        container = self._container(message)
        height = container.scrollable_content_region.height if container is not None else 0
        return max(self.WINDOW_MIN_ROWS, int(height * self.WINDOW_SCREENS))

    def _tick(self) -> None:
        self._timer = None
        deadline = perf_counter() + self.SLICE
        more = False
        self.stale = False
        candidates = self._distances(self.pending)
        if self.stale:
            # Positions are known once the pending layout is done (mounting, a height
            # correction): look again after the next refresh.
            self._waited += 1
            if (app := self._app()) is not None and not self._waiting:
                self._waiting = True
                app.call_after_refresh(self._after_layout)
            if not candidates:
                return
        else:
            self._waited = 0
        for distance, message in candidates:
            if distance > self._margin(message):
                break  # outside the window: waits for the user to scroll nearer
            if message._live:
                self.pending.discard(message)
            elif message._prerender(deadline):
                self.pending.discard(message)
                self.rendered.add(message)
                if message._height_changed():
                    self._relayout.append(weakref.ref(message))
            if perf_counter() >= deadline:
                more = True
                break
        # Height corrections wait until the window is rendered (while it is, the
        # arrangement that placed it stays valid): one layout of the whole conversation
        # per window, not one per slice; a huge window corrects once a second.
        # While the user scrolls, at most one such layout per FLUSH_GAP (a message
        # that is painted before its correction is applied asks for it itself).
        now = perf_counter()
        if self._relayout and not self._relayout_at:
            self._relayout_at = now + self.RELAYOUT_INTERVAL
        wait = self.FLUSH_GAP - (now - self._flushed_at)
        if self._relayout and ((not more and wait <= 0) or now >= self._relayout_at):
            self._relayout_at = 0.0
            self._flushed_at = now
            self._correct_heights()
        if not more:
            self._trim()
        if more:
            self._arm()
        elif self._relayout:
            self._arm(max(wait, self.PAUSE))

    def _correct_heights(self) -> None:
        """One layout for a batch of height corrections; what is shown stays in place."""
        shifts: dict[Widget, int] = {}
        placed: dict[Widget, dict[Widget, Region]] = {}
        for ref in self._relayout:
            target = ref()
            if target is None or not target.is_attached:
                continue
            container = self._container(target)
            delta = target._rendered_height() - target._reported_height
            if container is not None and delta and not _follows_end(container):
                regions = placed.get(container)
                if regions is None:
                    regions = placed[container] = _child_regions(container) or {}
                region = regions.get(_top(target, container))
                if region is not None and region.bottom <= round(container.scroll_y):
                    shifts[container] = shifts.get(container, 0) + delta
            target.refresh(layout=True)
        self._relayout.clear()
        for container, delta in shifts.items():
            # Applied with the layout that grows or shrinks the content above, so the
            # visible rows never move; validation would clamp it to the old height.
            y = max(0, round(container.scroll_y) + delta)
            container.set_reactive(Widget.scroll_y, y)
            container.set_reactive(Widget.scroll_target_y, y)
            self._watched[container] = y

    def _trim(self) -> None:
        """Drop the lines of complete messages far outside the window (over budget)."""
        kept = 0
        for distance, message in self._distances(self.rendered):
            if message._live or not message._is_exact():
                self.rendered.discard(message)
                continue
            if distance <= self._margin(message):
                continue
            lines = message._rendered_height()
            if kept + lines <= self.KEEP_LINES:
                kept += lines
                continue
            message._drop_lines()
            self.rendered.discard(message)
            self.pending.add(message)


def _follows_end(container: Widget) -> bool:
    return container.is_anchored and not container._anchor_released


def _top(widget: Widget, container: Widget) -> Widget:
    """The child of ``container`` that holds ``widget``."""
    while widget.parent is not container and isinstance(widget.parent, Widget):
        widget = widget.parent
    return widget


def _child_regions(container: Widget, *, current: bool = False) -> dict[Widget, Region] | None:
    """Where the container's displayed children are, in its scrolled (virtual) space.

    With ``current``, ``None`` while a layout is pending (the arrangement the compositor
    caches is stale): arranging 1,000 children here costs what the layout will, and the
    layout would then do it again.
    """
    size = container.scrollable_content_region.size
    if current and (size, container._nodes._updates, False) not in container._arrangement_cache:
        return None
    arrangement = container.arrange(size)
    cached = _placed.get(container)
    if cached is not None and cached[0] is arrangement:
        return cached[1]
    regions = {placement.widget: placement.region for placement in arrangement.placements}
    _placed[container] = (arrangement, regions)
    return regions


_placed: weakref.WeakKeyDictionary[Widget, tuple[object, dict[Widget, Region]]] = (
    weakref.WeakKeyDictionary()
)
"""The last arrangement of each scroll container, as a lookup by child."""


_renderers: weakref.WeakKeyDictionary[App[Any], _BackgroundRenderer] = weakref.WeakKeyDictionary()


def rendering_settled(app: App[Any]) -> bool:
    """Whether the app's saved messages near the viewport are rendered and nothing more
    is scheduled (what tests and benchmarks wait for; far ones render when scrolled to)."""
    renderer = _renderers.get(app)
    return renderer is None or renderer.idle


def renderer_of(app: App[Any]) -> _BackgroundRenderer:
    """The app's one background renderer (made on first use)."""
    renderer = _renderers.get(app)
    if renderer is None:
        renderer = _renderers[app] = _BackgroundRenderer(app)
    return renderer
