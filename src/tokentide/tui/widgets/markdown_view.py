"""``MarkdownMessage``: one assistant message rendered as Markdown, live, at any token rate.

Public API (used by the chat screen)::

    msg = MarkdownMessage(text="", streaming=True)   # or MarkdownMessage(saved_text)
    msg.append(fragment)   # sync, cheap; safe thousands of times a second
    msg.finish()           # flush + final render; msg.streaming is False afterwards
    msg.source             # the sanitised text received so far

Design (measurements in ``docs/performance.md``, "Live Markdown rendering"):

* One line-API widget per message, never one widget per block: its content is a list of
  :class:`~textual.strip.Strip`.  Finished top-level blocks are rendered once (per width,
  base style and code theme) and appended to that list; each frame re-parses and
  re-renders only the last block (:mod:`.markdown_lines`).  Per-frame cost is O(last
  block + visible lines), not O(message) and not O(conversation).
* ``append`` only sanitises and buffers (:mod:`.markdown_intake`).  A frame is scheduled
  at most every :attr:`MarkdownMessage.FRAME_INTERVAL` (30 Hz); if a frame took longer
  than ``FRAME_INTERVAL * RENDER_DUTY`` the next one waits proportionally (adaptive
  batching), so a huge live block cannot starve the event loop.
* Only the lines that changed are marked dirty; a layout refresh is requested only when
  the line count changed.  A scroll container anchored at the bottom (``anchor()``) is
  kept at the end by Textual's compositor on every such layout, whatever the token rate.
* A message created with text (a saved conversation) is not parsed or rendered until
  needed: its height is estimated, it is rendered when it first becomes visible or by
  the app's background renderer (:mod:`.markdown_background`), and its lines are dropped
  when it is far off-screen.  Opening 1,000 saved messages costs O(visible), not
  O(history) (issue 17, ``docs/performance.md``, "Long conversations").
* While a message streams, CPython's automatic full collections are deferred
  (:mod:`.gc_pacing`); the app's :func:`settle_gc` after the answer collects what they
  would have.

Everything shown comes from sanitised text; links are shown as text, never OSC 8.

CSS: ``DEFAULT_CSS`` holds only ``height: auto`` (the widget's height *is* its line count);
colours come from the app's theme, fenced code's from a dark or a light Pygments theme.
"""

from __future__ import annotations

from time import perf_counter
from typing import ClassVar, cast

from textual.geometry import Region, Size
from textual.selection import Selection
from textual.strip import Strip
from textual.widget import Widget

from tokentide.tui.widgets.gc_pacing import full_collections_deferred, settle_gc
from tokentide.tui.widgets.line_selection import highlighted, selected_text
from tokentide.tui.widgets.markdown_background import renderer_of, rendering_settled
from tokentide.tui.widgets.markdown_intake import MarkdownIntake
from tokentide.tui.widgets.markdown_lines import RenderedLines
from tokentide.tui.widgets.markdown_render import Line, code_theme, estimate_height, line_segments

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
    longer): a whole answer arriving at once is taken in over several frames."""

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
        self._intake = MarkdownIntake(text, streaming=streaming)
        self._doc = self._intake.doc  # a complete message's is parsed when first rendered
        self._draining = False
        """Finished, but frames are still taking in or rendering a burst of text."""
        self._cache = RenderedLines()
        """The rendered lines, valid for its width, base style and code theme."""
        self._reported_height = -1
        self._known_height = (0, 0)
        """``(width, height)`` of the last complete render: the height of a message whose
        lines were dropped (far off-screen) until it is rendered again."""
        self._queued = False
        self._correcting = False
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
        return self._intake.source

    @property
    def _width(self) -> int:
        """The width the lines are rendered at (0: not laid out yet)."""
        return self._cache.width

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
        if self._intake.append(text, self.FRAME_CHARS):
            self._schedule_frame()

    def finish(self) -> None:
        """End of the message: flush the sanitiser, render the final state at once.

        ``streaming`` is ``False`` afterwards.  Calling it twice is harmless.
        """
        self._intake.finish(self.FRAME_CHARS)  # text left waiting: the frames take it in
        self._streaming = False
        if self.is_attached and self._width:
            self._draining = True  # until a frame has taken in and rendered everything
            self._frame()
        else:
            self._draining = False
            self._intake.take_in(None)
        if not self._draining:
            self._release_gc()

    @property
    def lines(self) -> list[Strip]:
        """The rendered content lines at the current width (for tests and tools)."""
        self._intake.take_in(None)
        cache = self._cache
        if cache.width and not self._is_exact():
            self._sync(cache.width, deadline=None)
        return [
            Strip(line_segments(line), cast(int, line[0]))
            for line in (*cache.finished, *cache.live)
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
        intake = self._intake
        if intake.waiting:
            # At least as much as the live block already holds: each frame re-parses
            # that block, so a single huge paragraph costs O(n) in all, not O(n²).
            live = self._doc.live
            intake.take_in(max(self.FRAME_CHARS, live.end - live.start if live else 0))
        old_total = self._cache.height
        first_changed = self._sync(width, deadline=start + self.FRAME_BUDGET)
        # Text still waiting, or more finished blocks than one frame renders: go on.
        more = intake.waiting or self._cache.blocks < len(self._doc.finished)
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
        total = self._cache.height
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
        cache = self._cache
        if cache.style is not None and (
            self.rich_style != cache.style or cache.theme != code_theme(self.app.current_theme.dark)
        ):
            # Theme or CSS change: every cached line carries the old base style (and
            # code blocks the old theme's colours).
            cache.style = None
            self._reset(0)
            self.refresh(layout=True)

    def _is_exact(self) -> bool:
        return self._cache.exact(self._doc)

    def _reset(self, width: int) -> None:
        self._cache.reset(width, self._doc)
        self._strips.clear()

    def _completed(self) -> None:
        """A complete message is rendered at its width: keep only its lines.

        Its blocks (offsets, and tokens for the last) are forgotten; the lines are what
        is kept, and the background renderer may drop them too when the message is far
        off-screen (:meth:`_drop_lines`).
        """
        doc = self._doc
        cache = self._cache
        if not doc.closed or doc.live is not None or cache.blocks != len(doc.finished):
            return
        doc.forget()
        cache.blocks = 0
        self._known_height = (cache.width, cache.height)
        if self.is_attached:
            renderer_of(self.app).done(self)

    def _drop_lines(self) -> None:
        """Free the rendered lines (far off-screen); the height stays as it was."""
        self._cache.drop()
        self._strips.clear()
        self._styles_cache.clear()  # Textual's copy of the painted rows
        self._queued = True

    def _rendered_height(self) -> int:
        return self._cache.height

    def _sync(self, width: int, deadline: float | None) -> int:
        """Render what is missing at ``width``; returns the first line that changed.

        With a ``deadline`` (background rendering) it may stop early between blocks.
        """
        cache = self._cache
        if cache.style is None:
            cache.style = self.rich_style
            cache.theme = code_theme(self.app.current_theme.dark)
        if width != cache.width:
            self._reset(width)
        app = self.app
        return cache.sync(self._doc, app.console, app.console_options, deadline)

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
                if self._cache.blocks < len(self._doc.finished):
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
            height = self._cache.height
        self._reported_height = height
        return height

    def render_line(self, y: int) -> Strip:
        cache = self._cache
        width = cache.width
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
        lines = cache.finished
        row = y
        if y < len(lines):
            line = lines[y]
        else:
            row -= len(lines)
            live = cache.live
            if row >= len(live):
                return Strip.blank(width, cache.style)
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
