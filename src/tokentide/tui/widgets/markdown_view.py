"""``MarkdownMessage``: one assistant message rendered as Markdown, live, at any token rate.

Public API (used by the chat screen)::

    msg = MarkdownMessage(text="", streaming=True)   # or MarkdownMessage(saved_text)
    msg.append(fragment)   # sync, cheap; safe thousands of times a second
    msg.finish()           # flush + final render; msg.streaming is False afterwards
    msg.source             # the sanitised text received so far

Design (measurements in ``docs/performance.md``, "Live Markdown rendering"):

* One line-API widget per message, never one widget per block: its content is a list of
  :class:`~textual.strip.Strip`.  Finished top-level blocks are rendered once (per width)
  and appended to that list; each frame re-parses and re-renders only the last block
  (see :mod:`.markdown_render`).  Per-frame cost is O(last block + visible lines), not
  O(message) and not O(conversation).
* ``append`` only sanitises (:class:`tokentide.sanitize.StreamSanitizer`) and buffers.
  A frame is scheduled at most every :attr:`MarkdownMessage.FRAME_INTERVAL` (30 Hz); if a
  frame took longer than ``FRAME_INTERVAL * RENDER_DUTY`` the next one waits
  proportionally (adaptive batching), so a huge live block cannot starve the event loop.
* Only the lines that changed are marked dirty; a layout refresh is requested only when
  the line count changed.  A scroll container anchored at the bottom (``anchor()``) is
  kept at the end by Textual's compositor on every such layout, whatever the token rate.
* A message created with text (a saved conversation) is not parsed or rendered until
  needed: its height is estimated, it is rendered when it first becomes visible, and a
  shared background renderer (:class:`_BackgroundRenderer`) renders those within two
  screens of the viewport in ≤ 8 ms slices, then corrects their heights in one layout
  without moving what is shown.  Far off-screen messages keep only their text: their
  rendered lines are dropped beyond a budget and rendered again when scrolled to.
  Opening 1,000 saved messages therefore costs O(visible), not O(history) (issue 17,
  ``docs/performance.md``, "Long conversations: background rendering and memory").
* A width change re-wraps: lines are cached per (width, base style).
* While a message streams, CPython's automatic full collections are deferred (see
  :class:`_FullCollectionsDeferred`); the app's :func:`settle_gc` after the answer
  collects what they would have.

Everything shown comes from sanitised text; links are shown as text, never OSC 8.

CSS: ``DEFAULT_CSS`` holds only ``height: auto`` — the widget's height *is* its line count,
a structural requirement rather than theming; padding, margins and colours belong to the
app's ``.tcss``.
"""

from __future__ import annotations

import gc
import weakref
from collections import deque
from time import perf_counter
from typing import Any, ClassVar, cast

from rich.style import Style
from textual.app import App
from textual.geometry import Region, Size
from textual.selection import Selection
from textual.strip import Strip
from textual.timer import Timer
from textual.widget import Widget

from tokentide.sanitize import StreamSanitizer, sanitize
from tokentide.tui.widgets.line_selection import highlighted, selected_text
from tokentide.tui.widgets.markdown_render import (
    BLANK_LINE,
    IncrementalDocument,
    Line,
    estimate_height,
    line_segments,
    render_block,
)

__all__ = ["MarkdownMessage", "rendering_settled", "settle_gc"]


def settle_gc() -> None:
    """Collect garbage once, then exclude every surviving object from future collections.

    Call it where a pause of one full collection (10–60 ms measured) is harmless and a
    lot of long-lived objects were just created: once the app's first screen is up
    (``App.on_ready``), after a saved conversation has been mounted and painted (opening
    or switching conversations: ``self.call_after_refresh(settle_gc)`` right after the
    ``mount_all``, so the collection does not delay the first paint), and after an
    answer has finished streaming.

    Why: CPython's cyclic GC periodically walks every tracked object (a *full*
    collection).  During a 20,000-token stream with 50 earlier answers on screen these
    collections took 50–110 ms each — event-loop stalls — because they walked Textual's
    and the conversation's ~100k long-lived objects again and again.  After
    ``gc.freeze()`` they only walk what was allocated since (7–30 ms measured; see
    ``docs/performance.md``, "Live Markdown rendering").

    ``gc.unfreeze()`` first, so that objects frozen by an earlier call that have become
    cyclic garbage since (the widgets of a closed conversation) are collected now
    instead of leaking.
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()


class _FullCollectionsDeferred:
    """While any message streams, CPython's automatic *full* collections wait.

    A full (generation 2) collection walks every tracked object allocated since the last
    :func:`settle_gc`; during a stream it ran ~20 times per 20,000 tokens and took
    13–29 ms each, and every worst event-loop stall measured with 50 earlier answers on
    screen was one of them landing inside a layout (``docs/performance.md``).  Young
    collections (generations 0 and 1) go on as usual, so short-lived cycles are still
    freed at once; what survives them waits for the :func:`settle_gc` the app runs when
    the answer ends.  Reference-counted objects (almost everything) are freed as always.

    Counted: several messages may stream at once (comparison panes, multi-node answers).
    A message that is unmounted while streaming releases its hold.
    """

    DEFERRED_THRESHOLD2: ClassVar[int] = 1_000_000

    def __init__(self) -> None:
        self.holders = 0
        self._saved: tuple[int, int, int] | None = None

    def hold(self) -> None:
        self.holders += 1
        if self.holders == 1:
            self._saved = gc.get_threshold()
            first, second, _ = self._saved
            gc.set_threshold(first, second, self.DEFERRED_THRESHOLD2)

    def release(self) -> None:
        if self.holders <= 0:
            return
        self.holders -= 1
        if self.holders == 0 and self._saved is not None:
            # Restoring the threshold alone would let the next young collection start
            # the full one held back, over everything the stream left: 40-90 ms inside
            # the paint of the answer's last tokens (issue 17).  Freezing the survivors
            # first is O(1); the app's settle_gc() at rest unfreezes and collects them.
            gc.freeze()
            gc.set_threshold(*self._saved)
            self._saved = None


full_collections_deferred = _FullCollectionsDeferred()


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

    def _watch(self, message: MarkdownMessage) -> None:
        container = message._scroller()
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
            container = message._scroller()
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
        container = message._scroller()
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
            container = target._scroller()
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


def _renderer(app: App[Any]) -> _BackgroundRenderer:
    renderer = _renderers.get(app)
    if renderer is None:
        renderer = _renderers[app] = _BackgroundRenderer(app)
    return renderer


class MarkdownMessage(Widget):
    """One assistant message rendered as Markdown, streamed or complete.

    Args:
        text: Initial (untrusted) Markdown; sanitised here.
        streaming: ``True`` while more text will be :meth:`append`-ed; call
            :meth:`finish` at the end.  ``False`` for a complete (e.g. saved) message,
            which is rendered lazily.
        id: Widget id.
        classes: CSS classes.
    """

    DEFAULT_CSS = """
    MarkdownMessage {
        height: auto;
    }
    """

    FRAME_INTERVAL: ClassVar[float] = 1 / 30
    """Minimum seconds between two renders while streaming (time-based coalescing)."""
    RENDER_DUTY: ClassVar[float] = 0.25
    """Maximum share of wall time spent rendering; slower frames delay the next one."""
    FRAME_BUDGET: ClassVar[float] = 0.05
    """Seconds one frame may spend rendering finished blocks; the rest waits for the
    next frame (only a burst of many blocks at once ever reaches it)."""
    FRAME_CHARS: ClassVar[int] = 32 * 1024
    """Characters one frame takes into the document (more when the live block is already
    longer).  A whole answer arriving at once (a non-streamed reply, a predictor's huge
    piece) is fed in slices over several frames, so parsing a megabyte does not block
    the event loop for seconds."""

    def __init__(
        self,
        text: str = "",
        *,
        streaming: bool = False,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(id=id, classes=classes)
        self._streaming = streaming
        self._sanitizer = StreamSanitizer()
        self._doc = IncrementalDocument()
        self._backlog: deque[str] = deque()
        """Sanitised text not yet in the document (more than a frame's worth arrived)."""
        self._backlog_chars = 0
        self._closing_doc = False
        """:meth:`finish` was called while text waited: close once it is all in."""
        self._draining = False
        """Finished, but frames are still taking in or rendering a burst of text."""
        if text:
            self._doc.append(self._sanitizer.feed(text) if streaming else sanitize(text))
        if not streaming:
            self._doc.complete()  # parsed when first rendered
        # Render cache, valid for (_width, _style).
        self._width = 0
        self._style: Style | None = None
        self._lines: list[Line] = []  # finished blocks, append-only
        self._rendered_blocks = 0  # how many of _doc.finished are in _lines
        self._live_lines: list[Line] = []  # the live block (with its separator)
        self._parsed = False
        self._reported_height = -1
        self._known_height = (0, 0)
        """``(width, height)`` of the last complete render: the height of a message whose
        lines were dropped (far off-screen) until it is rendered again."""
        self._queued = False
        self._correcting = False
        self._scroller_of: tuple[object, Widget | None] | None = None
        """``(parent, scroll container)`` found last (see :meth:`_scroller`)."""
        # Frame scheduling.
        self._frame_pending = False
        self._next_frame_at = 0.0
        self._holds_gc = False
        self._strips: dict[int, tuple[Line, Strip]] = {}
        """Painted strips with their offsets, by row, reused while the row's line is."""

    # -- public API -------------------------------------------------------------------

    @property
    def streaming(self) -> bool:
        """``True`` until :meth:`finish` is called (for a message built with ``streaming``)."""
        return self._streaming

    @property
    def source(self) -> str:
        """The sanitised Markdown received so far."""
        if self._backlog:
            return self._doc.text + "".join(self._backlog)
        return self._doc.text

    @property
    def _live(self) -> bool:
        """Rendered frame by frame: streaming, or still taking in a backlog."""
        return self._streaming or self._draining

    def append(self, text: str) -> None:
        """Add a fragment of (untrusted) Markdown.

        Synchronous and O(len(text)) amortised: the text is sanitised and buffered, and a
        coalesced render is scheduled (at most one per :attr:`FRAME_INTERVAL`).  Safe to
        call thousands of times a second.
        """
        clean = self._sanitizer.feed(text)
        if clean:
            self._take(clean)
            self._schedule_frame()

    def _take(self, clean: str) -> None:
        if self._backlog or len(clean) > self.FRAME_CHARS:
            self._backlog.append(clean)
            self._backlog_chars += len(clean)
        else:
            self._doc.append(clean)

    def _feed_backlog(self, limit: int | None) -> None:
        """Move up to ``limit`` characters (all when None) of the backlog into the doc."""
        budget = self._backlog_chars if limit is None else limit
        backlog = self._backlog
        while backlog and budget > 0:
            head = backlog[0]
            if len(head) <= budget:
                backlog.popleft()
                piece = head
            else:
                piece, backlog[0] = head[:budget], head[budget:]
            self._doc.append(piece)
            budget -= len(piece)
            self._backlog_chars -= len(piece)
        if not backlog and self._closing_doc:
            self._closing_doc = False
            self._doc.close()

    def finish(self) -> None:
        """End of the message: flush the sanitiser, render the final state at once.

        ``streaming`` is ``False`` afterwards.  Calling it twice is harmless.
        """
        self._take(self._sanitizer.flush())
        if self._backlog:
            self._closing_doc = True  # the frames take the rest in, then close the document
        else:
            self._doc.close()
        self._streaming = False
        if self.is_attached and self._width:
            self._draining = True  # until a frame has taken in and rendered everything
            self._frame()
        else:
            self._draining = False
            self._feed_backlog(None)
        if not self._draining:
            self._release_gc()

    @property
    def lines(self) -> list[Strip]:
        """The rendered content lines at the current width (for tests and tools)."""
        self._feed_backlog(None)
        if self._width and not self._is_exact():
            self._sync(self._width, deadline=None)
        return [
            Strip(line_segments(line), cast(int, line[0]))
            for line in (*self._lines, *self._live_lines)
        ]

    # -- scheduling -------------------------------------------------------------------

    def _schedule_frame(self) -> None:
        if self._frame_pending or not self.is_attached:
            return
        self._frame_pending = True
        delay = self._next_frame_at - perf_counter()
        if delay > 0:
            self.set_timer(delay, self._frame, name="markdown-frame")
        else:
            self.call_later(self._frame)

    def on_mount(self) -> None:
        if self._live and not self._holds_gc:
            self._holds_gc = True
            full_collections_deferred.hold()
        if self._live and (self._doc.dirty or self._doc.live is not None):
            self._schedule_frame()  # a complete message renders lazily instead

    def on_unmount(self) -> None:
        self._release_gc()

    def _release_gc(self) -> None:
        if self._holds_gc:
            self._holds_gc = False
            full_collections_deferred.release()

    def _frame(self) -> None:
        """Bring the lines up to date and refresh only what changed."""
        self._frame_pending = False
        width = self._width
        if not width or not self.is_attached:
            return
        start = perf_counter()
        if self._backlog:
            # At least as much as the live block already holds: each frame re-parses
            # that block, so a single huge paragraph costs O(n) in all, not O(n²).
            live = self._doc.live
            self._feed_backlog(max(self.FRAME_CHARS, live.end - live.start if live else 0))
        old_total = len(self._lines) + len(self._live_lines)
        first_changed = self._sync(width, deadline=start + self.FRAME_BUDGET)
        # Text still waiting, or more finished blocks than one frame renders: go on.
        more = bool(self._backlog) or self._rendered_blocks < len(self._doc.finished)
        if not more and self._draining and not self._doc.dirty:
            self._draining = False  # the burst is all in and rendered
            self._release_gc()
        self._next_frame_at = start + max(
            self.FRAME_INTERVAL, (perf_counter() - start) / self.RENDER_DUTY
        )
        self._refresh_from(first_changed, old_total)
        if more:
            self._schedule_frame()
        elif not self._live:
            self._completed()

    def _refresh_from(self, first_changed: int, old_total: int) -> None:
        total = len(self._lines) + len(self._live_lines)
        regions = (
            (Region(0, first_changed, self._width, total - first_changed),)
            if first_changed < total
            else ()
        )
        if total != self._reported_height:
            self.refresh(*regions, layout=True)
        elif regions:
            self.refresh(*regions)
        elif total < old_total:
            self.refresh()

    # -- rendering --------------------------------------------------------------------

    def notify_style_update(self) -> None:
        super().notify_style_update()
        if self._style is not None and self.rich_style != self._style:
            # Theme or CSS change: every cached line carries the old base style.
            self._style = None
            self._reset(0)
            self.refresh(layout=True)

    def _is_exact(self) -> bool:
        doc = self._doc
        return self._parsed and not doc.dirty and self._rendered_blocks == len(doc.finished)

    def _reset(self, width: int) -> None:
        self._width = width
        self._lines = []
        self._live_lines = []
        self._strips.clear()
        self._rendered_blocks = 0
        if self._doc.closed and not self._doc.finished:
            self._parsed = False  # blocks forgotten: parse the whole text again

    def _completed(self) -> None:
        """A complete message is rendered at its width: keep only its lines.

        Its blocks (offsets, and tokens for the last) are forgotten; the lines are what
        is kept, and the background renderer may drop them too when the message is far
        off-screen (:meth:`_drop_lines`).
        """
        doc = self._doc
        if not doc.closed or doc.live is not None or self._rendered_blocks != len(doc.finished):
            return
        doc.forget()
        self._rendered_blocks = 0
        self._known_height = (self._width, self._rendered_height())
        if self.is_attached:
            _renderer(self.app).done(self)

    def _drop_lines(self) -> None:
        """Free the rendered lines (far off-screen); the height stays as it was."""
        self._lines = []
        self._live_lines = []
        self._strips.clear()
        self._styles_cache.clear()  # Textual's copy of the painted rows
        self._rendered_blocks = 0
        self._parsed = False
        self._queued = True

    def _rendered_height(self) -> int:
        return len(self._lines) + len(self._live_lines)

    def _scroller(self) -> Widget | None:
        """The nearest scrolling ancestor (the conversation), if any."""
        parent = self.parent
        cached = self._scroller_of
        if cached is not None and cached[0] is parent:
            return cached[1]
        node = parent
        while isinstance(node, Widget):
            if node.styles.overflow_y in ("auto", "scroll"):
                break
            node = node.parent
        found = node if isinstance(node, Widget) else None
        self._scroller_of = (parent, found)
        return found

    def _sync(self, width: int, deadline: float | None) -> int:
        """Render what is missing at ``width``; returns the first line that changed.

        With a ``deadline`` (background rendering) it may stop early between blocks.
        """
        if self._style is None:
            self._style = self.rich_style
        if width != self._width:
            self._reset(width)
        doc = self._doc
        if doc.dirty or not self._parsed:
            doc.update()
            self._parsed = True
        style = self._style or Style()
        app = self.app
        console = app.console
        options = app.console_options
        lines = self._lines
        first_changed = len(lines)
        blank: Line = BLANK_LINE
        finished = doc.finished
        text = doc.text
        while self._rendered_blocks < len(finished):
            block = finished[self._rendered_blocks]
            if lines:
                lines.append(blank)
            lines.extend(render_block(block, text, width, console, options, style))
            block.tokens = None
            self._rendered_blocks += 1
            if deadline is not None and perf_counter() >= deadline:
                break
        old_live = self._live_lines
        live: list[Line] = []
        if doc.live is not None and self._rendered_blocks == len(finished):
            if lines:
                live.append(blank)
            live.extend(render_block(doc.live, text, width, console, options, style))
        self._live_lines = live
        if len(lines) == first_changed:
            # Only the live block changed: find its first differing line.
            for index, (old, new) in enumerate(zip(old_live, live, strict=False)):
                if old != new:
                    first_changed += index
                    break
            else:
                first_changed += min(len(old_live), len(live))
        return first_changed

    def _prerender(self, deadline: float) -> bool:
        """Background slice for a complete message; ``True`` when nothing is left."""
        width = self._width
        if not width or self._live:
            return True
        if self._is_exact():
            self._queued = False
            return True
        self._sync(width, deadline)
        if not self._is_exact():
            return False
        self._queued = False
        self._completed()
        return True

    def _correct_height(self) -> None:
        self._correcting = False
        if self._height_changed():
            self.refresh(layout=True)

    def _height_changed(self) -> bool:
        return self._rendered_height() != self._reported_height

    def get_content_width(self, container: Size, viewport: Size) -> int:
        return container.width

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        if width <= 0:
            return 0
        if width != self._width:
            self._reset(width)
            if self._live:
                # Re-wrap what one frame can; the frames that follow do the rest.
                self._sync(width, deadline=perf_counter() + self.FRAME_BUDGET)
                if self._rendered_blocks < len(self._doc.finished):
                    self._schedule_frame()
            elif self._doc.live is not None:
                self._sync(width, deadline=None)
        if not self._live and not self._is_exact():
            # A complete message: estimate now, render when visible or in the background.
            if not self._queued or self not in _renderer(self.app).pending:
                self._queued = True
                _renderer(self.app).add(self)
            known_width, height = self._known_height
            if known_width != width:
                height = estimate_height(self._doc.text, width)
        else:
            # Streaming: what is rendered; the next frame catches up with pending text.
            height = len(self._lines) + len(self._live_lines)
        self._reported_height = height
        return height

    def render_line(self, y: int) -> Strip:
        width = self._width
        if width and not self._live:
            if not self._is_exact():
                # Became visible before the background renderer reached it.
                self._sync(width, deadline=None)
                self._queued = False
                self._completed()
            if self._height_changed() and not self._correcting:
                # Painted with its estimated height: lay out with the real one now
                # (not with the background renderer's next batch).
                self._correcting = True
                self.call_after_refresh(self._correct_height)
        lines = self._lines
        row = y
        if y < len(lines):
            line = lines[y]
        else:
            row -= len(lines)
            live = self._live_lines
            if row >= len(live):
                return Strip.blank(width, self._style)
            line = live[row]
        cached = self._strips.get(y)
        if cached is not None and cached[0] is line:
            strip = cached[1]
        else:
            # Offsets let Textual map the mouse to this line and cell (text selection).
            strip = Strip(line_segments(line), cast(int, line[0])).apply_offsets(0, y)
            if len(self._strips) > 256:  # keep about a screenful, not the whole answer
                self._strips.clear()
            self._strips[y] = (line, strip)
        selection = self.text_selection
        if selection is not None and (span := selection.get_span(y)) is not None:
            style = self.screen.get_component_rich_style("screen--selection")
            strip = highlighted(strip, span, style)
        return strip

    # -- selection --------------------------------------------------------------------

    def get_selection(self, selection: Selection) -> tuple[str, str] | None:
        """The selected text (see :mod:`.line_selection`) for Textual's copy."""
        lines = [strip.text.rstrip() for strip in self.lines]
        return selected_text(lines, selection, self.source), "\n"

    def selection_updated(self, selection: Selection | None) -> None:
        self.refresh()
