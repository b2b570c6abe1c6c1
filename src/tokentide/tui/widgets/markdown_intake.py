"""What a live Markdown message has received: sanitised, then taken into its document.

:meth:`MarkdownMessage.append <tokentide.tui.widgets.markdown_view.MarkdownMessage.append>`
runs thousands of times a second, so it does no more than this: sanitise the fragment
(:class:`tokentide.sanitize.StreamSanitizer`, which holds back an escape sequence split
across fragments) and hand it to the :class:`IncrementalDocument` that parses it.  A
piece bigger than a frame's worth (a non-streamed reply arriving at once, a predictor's
huge piece) waits in a backlog instead, and the widget's frames take it in a slice at a
time (:meth:`MarkdownIntake.take_in`), so parsing a megabyte never blocks the event loop
for seconds.  Everything the document holds was sanitised here first.
"""

from __future__ import annotations

from collections import deque

from tokentide.sanitize import StreamSanitizer, sanitize
from tokentide.tui.widgets.markdown_render import IncrementalDocument

__all__ = ["MarkdownIntake"]


class MarkdownIntake:
    """A message's received text: its document, plus what waits to go in.

    Args:
        text: Initial (untrusted) Markdown.
        streaming: More text will come (:meth:`append`, then :meth:`finish`); a complete
            message's document is marked complete, to be parsed when first rendered.
    """

    __slots__ = ("_backlog", "_backlog_chars", "_closing", "_sanitizer", "doc")

    def __init__(self, text: str, *, streaming: bool) -> None:
        self._sanitizer = StreamSanitizer()
        self.doc = IncrementalDocument()
        """The parsed text: every block, the live one re-parsed as it grows."""
        self._backlog: deque[str] = deque()
        """Sanitised text not yet in the document (more than a frame's worth arrived)."""
        self._backlog_chars = 0
        self._closing = False
        """:meth:`finish` was called while text waited: close once it is all in."""
        if text:
            self.doc.append(self._sanitizer.feed(text) if streaming else sanitize(text))
        if not streaming:
            self.doc.complete()

    @property
    def source(self) -> str:
        """The sanitised Markdown received so far (in the document or waiting)."""
        if self._backlog:
            return self.doc.text + "".join(self._backlog)
        return self.doc.text

    @property
    def waiting(self) -> bool:
        """Some text is still in the backlog, not yet in the document."""
        return bool(self._backlog)

    def append(self, text: str, frame_chars: int) -> bool:
        """Sanitise a fragment and take it (see :meth:`_take`); ``True`` when anything
        came out of the sanitiser (it may hold an unfinished escape sequence back)."""
        clean = self._sanitizer.feed(text)
        if clean:
            self._take(clean, frame_chars)
        return bool(clean)

    def finish(self, frame_chars: int) -> None:
        """The end of the text: flush the sanitiser and close the document, or, when text
        still waits, have :meth:`take_in` close it once it is all in."""
        self._take(self._sanitizer.flush(), frame_chars)
        if self._backlog:
            self._closing = True
        else:
            self.doc.close()

    def _take(self, clean: str, frame_chars: int) -> None:
        """Into the document, unless text already waits or this is more than a frame's
        worth (``frame_chars``): then into the backlog, behind what waits."""
        if self._backlog or len(clean) > frame_chars:
            self._backlog.append(clean)
            self._backlog_chars += len(clean)
        else:
            self.doc.append(clean)

    def take_in(self, limit: int | None) -> None:
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
            self.doc.append(piece)
            budget -= len(piece)
            self._backlog_chars -= len(piece)
        if not backlog and self._closing:
            self._closing = False
            self.doc.close()
