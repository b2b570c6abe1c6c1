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
a structural requirement rather than theming; colours come from the app's theme, fenced
code in a dark or a light Pygments theme as the app's theme is dark or light.
"""

from __future__ import annotations

from collections import deque
from time import perf_counter
from typing import ClassVar, cast

from rich.style import Style
from textual.geometry import Region, Size
from textual.selection import Selection
from textual.strip import Strip
from textual.widget import Widget

from tokentide.sanitize import StreamSanitizer, sanitize
from tokentide.tui.widgets.gc_pacing import full_collections_deferred, settle_gc
from tokentide.tui.widgets.line_selection import highlighted, selected_text
from tokentide.tui.widgets.markdown_background import renderer_of, rendering_settled
from tokentide.tui.widgets.markdown_render import (
    BLANK_LINE,
    IncrementalDocument,
    Line,
    code_theme,
    estimate_height,
    line_segments,
    render_block,
)

__all__ = ["MarkdownMessage", "rendering_settled", "settle_gc"]


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
        # Render cache, valid for (_width, _style, _code_theme).
        self._width = 0
        self._style: Style | None = None
        self._code_theme = code_theme(dark=True)
        """Pygments theme of the cached code blocks: the app theme's, dark or light."""
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
        if self._style is not None and (
            self.rich_style != self._style
            or self._code_theme != code_theme(self.app.current_theme.dark)
        ):
            # Theme or CSS change: every cached line carries the old base style (and
            # code blocks the old theme's colours).
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
            renderer_of(self.app).done(self)

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
            self._code_theme = code_theme(self.app.current_theme.dark)
        if width != self._width:
            self._reset(width)
        doc = self._doc
        if doc.dirty or not self._parsed:
            doc.update()
            self._parsed = True
        style = self._style or Style()
        theme = self._code_theme
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
            lines.extend(render_block(block, text, width, console, options, style, theme))
            block.tokens = None
            self._rendered_blocks += 1
            if deadline is not None and perf_counter() >= deadline:
                break
        old_live = self._live_lines
        live: list[Line] = []
        if doc.live is not None and self._rendered_blocks == len(finished):
            if lines:
                live.append(blank)
            live.extend(render_block(doc.live, text, width, console, options, style, theme))
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
            if not self._queued or self not in renderer_of(self.app).pending:
                self._queued = True
                renderer_of(self.app).add(self)
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
