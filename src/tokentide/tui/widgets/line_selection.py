"""Mouse selection for line-API widgets (the answer's ``MarkdownMessage``).

Textual selects text in a widget when its strips carry offsets (``Strip.apply_offsets``)
and the widget answers :meth:`~textual.widget.Widget.get_selection`; it paints the
highlight only for widgets that render through ``Content``.  A line-API widget does both
itself: :func:`highlighted` paints the selected cells of one line with the screen's
``screen--selection`` style, :func:`selected_text` extracts what was selected.

What is copied is what is on screen (the rendered lines), except when the whole message
is selected: then it is the Markdown source, which pastes back as the same answer.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.segment import Segment
from rich.style import Style
from textual.selection import Selection
from textual.strip import Strip

__all__ = ["highlighted", "selected_text"]


def highlighted(strip: Strip, span: tuple[int, int], style: Style) -> Strip:
    """``strip`` with cells ``span`` (``end`` -1: to the end) in the selection style."""
    start, end = span
    length = strip.cell_length
    if end == -1 or end > length:
        end = length
    if start >= end:
        return strip
    before, middle, after = strip.divide([start, end, length])
    middle = Strip(Segment.apply_style(middle, post_style=style), middle.cell_length)
    return Strip.join([before, middle, after])


def selected_text(lines: Sequence[str], selection: Selection, source: str) -> str:
    """The selected part of the rendered ``lines``; the Markdown ``source`` when the
    selection covers the whole message."""
    start, end = selection.start, selection.end
    whole = (start is None or (start.y <= 0 and start.x <= 0)) and (
        end is None or end.y >= len(lines) or (end.y == len(lines) - 1 and end.x >= len(lines[-1]))
    )
    if whole and lines:
        return source
    return selection.extract("\n".join(lines))
