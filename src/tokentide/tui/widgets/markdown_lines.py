"""A message's rendered lines at one width: finished blocks once, the live block per frame.

The render cache behind :class:`~tokentide.tui.widgets.markdown_view.MarkdownMessage`,
apart from the widget that schedules, lays out and paints it.  Finished top-level
blocks of the document are rendered once (per width, base style and code theme) and
appended to an append-only list; only the last, live block is re-rendered on each sync
(:mod:`.markdown_render` does the rendering).  A sync costs O(last block), not
O(message), and says which line is the first that changed, so the widget repaints only
from there.  A width, style or theme change starts again from nothing (:meth:`reset`);
a message far off-screen drops its lines (:meth:`drop`) and renders them again when
scrolled to.
"""

from __future__ import annotations

from time import perf_counter

from rich.console import Console, ConsoleOptions
from rich.style import Style

from tokentide.tui.widgets.markdown_render import (
    BLANK_LINE,
    IncrementalDocument,
    Line,
    code_theme,
    render_block,
)

__all__ = ["RenderedLines"]


class RenderedLines:
    """The lines of one document rendered at :attr:`width` in :attr:`style`, fenced
    code in :attr:`theme`."""

    __slots__ = ("blocks", "finished", "live", "parsed", "style", "theme", "width")

    def __init__(self) -> None:
        self.width = 0
        self.style: Style | None = None
        """The widget's base style the lines carry; None: not known yet (or changed)."""
        self.theme = code_theme(dark=True)
        """Pygments theme of the cached code blocks: the app theme's, dark or light."""
        self.finished: list[Line] = []
        """The finished blocks' lines, with a blank line between blocks; append-only."""
        self.blocks = 0
        """How many of the document's finished blocks are in :attr:`finished`."""
        self.live: list[Line] = []
        """The live block's lines (with the blank line before it)."""
        self.parsed = False

    @property
    def height(self) -> int:
        """How many lines are rendered."""
        return len(self.finished) + len(self.live)

    def exact(self, doc: IncrementalDocument) -> bool:
        """Everything in ``doc`` is parsed and rendered."""
        return self.parsed and not doc.dirty and self.blocks == len(doc.finished)

    def reset(self, width: int, doc: IncrementalDocument) -> None:
        """Forget every line; render at ``width`` from now on."""
        self.width = width
        self.finished = []
        self.live = []
        self.blocks = 0
        if doc.closed and not doc.finished:
            self.parsed = False  # blocks forgotten: parse the whole text again

    def drop(self) -> None:
        """Free every line (the message is far off-screen); the next sync parses and
        renders the whole text again."""
        self.finished = []
        self.live = []
        self.blocks = 0
        self.parsed = False

    def sync(
        self,
        doc: IncrementalDocument,
        console: Console,
        options: ConsoleOptions,
        deadline: float | None,
    ) -> int:
        """Render what is missing at :attr:`width`; returns the first line that changed.

        With a ``deadline`` (a frame's budget, background rendering) it may stop early
        between finished blocks; the live block is rendered only once every finished
        block before it is.
        """
        if doc.dirty or not self.parsed:
            doc.update()
            self.parsed = True
        width = self.width
        style = self.style or Style()
        theme = self.theme
        lines = self.finished
        first_changed = len(lines)
        blank: Line = BLANK_LINE
        finished = doc.finished
        text = doc.text
        while self.blocks < len(finished):
            block = finished[self.blocks]
            if lines:
                lines.append(blank)
            lines.extend(render_block(block, text, width, console, options, style, theme))
            block.tokens = None
            self.blocks += 1
            if deadline is not None and perf_counter() >= deadline:
                break
        old_live = self.live
        live: list[Line] = []
        if doc.live is not None and self.blocks == len(finished):
            if lines:
                live.append(blank)
            live.extend(render_block(doc.live, text, width, console, options, style, theme))
        self.live = live
        if len(lines) == first_changed:
            # Only the live block changed: find its first differing line.
            for index, (old, new) in enumerate(zip(old_live, live, strict=False)):
                if old != new:
                    first_changed += index
                    break
            else:
                first_changed += min(len(old_live), len(live))
        return first_changed
