"""Incremental Markdown → rendered lines engine behind ``MarkdownMessage``.

Why this exists (``docs/performance.md``, "Live Markdown rendering"): stock Textual
``Markdown`` keeps one widget per block, so every refresh reflows every block widget of
every message and a new block costs ~20 ms to mount.  Here a message is *one* line-API
widget and its Markdown is a list of pre-rendered lines:

* The source is split into top-level blocks with ``markdown-it`` (the parser rich uses).
  Only the tail — from the first line of the last top-level block — is ever re-parsed;
  every block before it is final (CommonMark block starts are stable under appends; the
  last block may still change type: paragraph → setext heading → table, open fence …).
* A finished block is rendered once per width to strips and appended to an append-only
  line list; only the last ("live") block is re-rendered per frame.
* Rendering uses ``rich.markdown.Markdown`` fed with the already-parsed tokens (no second
  parse), with ``hyperlinks=False`` (links are shown as ``text (url)``) and any ``link``
  style removed from the output, so no OSC 8 hyperlink is ever emitted for model text.

Reference-style link definitions are resolved per block (rich ignores them anyway).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, cast

from markdown_it import MarkdownIt
from markdown_it.token import Token
from rich.cells import cell_len
from rich.console import Console, ConsoleOptions
from rich.markdown import Markdown as RichMarkdown
from rich.segment import Segment
from rich.style import Style

__all__ = [
    "BLANK_LINE",
    "CODE_THEME",
    "CODE_THEME_LIGHT",
    "Block",
    "IncrementalDocument",
    "Line",
    "code_theme",
    "estimate_height",
    "line_segments",
    "pack_line",
    "render_block",
]

CODE_THEME: Final = "monokai"
"""Pygments theme for fenced code under a dark app theme (rich's default)."""
CODE_THEME_LIGHT: Final = "default"
"""Pygments theme for fenced code under a light app theme (Pygments' own default: dark
text on a near-white background)."""


def code_theme(dark: bool) -> str:
    """The Pygments theme for code under an app theme that is ``dark`` or light."""
    return CODE_THEME if dark else CODE_THEME_LIGHT


# The same configuration as rich.markdown.Markdown, built once (≈0.35 ms per instance).
_PARSER: Final = MarkdownIt().enable("strikethrough").enable("table")


class _TokensMarkdown(RichMarkdown):
    """A rich ``Markdown`` that renders tokens we already parsed.

    ``RichMarkdown.__init__`` builds a new ``MarkdownIt`` and parses again; we set the
    same attributes ourselves instead (rich 14/15 attribute set).
    """

    def __init__(self, tokens: list[Token], code_theme: str) -> None:
        self.markup = ""
        self.parsed = tokens
        self.code_theme = code_theme
        self.justify = None
        self.style = "none"
        self.hyperlinks = False
        self.inline_code_lexer = None
        self.inline_code_theme = code_theme


@dataclass(slots=True, eq=False)
class Block:
    """One top-level Markdown block: where it is in the source and (until rendered) its
    tokens.

    Offsets, not a copy of the block's text: a message's source is kept once, by its
    :class:`IncrementalDocument` (issue 17: per-answer memory is what is shown).  Tokens
    are dropped once a finished block is rendered (``tokens = None``): a long
    conversation would otherwise keep ~40 ``Token`` objects (each with its dicts and
    lists) per block alive, and the cyclic GC's full collections — event-loop stalls —
    grow with the number of live objects.  A re-render (new width) parses the block's
    source alone, which gives the same tokens.
    """

    start: int
    """Offset of the block's first character in the document's text."""
    end: int
    """Offset just past its last character."""
    tokens: list[Token] | None


Line = tuple[int | str, ...]
"""One rendered line, packed: ``(cell_length, text, style_id, text, style_id, …)``.

Not a list of :class:`~rich.segment.Segment` and not a :class:`~textual.strip.Strip`: a
long conversation holds tens of thousands of lines, and every container object that
stays alive is walked by each of CPython's full cyclic-GC collections (event-loop
stalls of 50–100+ ms measured with segment lists; a ``Strip`` even carries seven
caches).  A tuple holding only ``str`` and ``int`` is *untracked* by the GC after the
first collection that sees it, so finished lines cost the collector nothing.  Styles are
interned in a small process-wide table (:func:`line_segments` turns a line back into
segments when it is painted)."""

_STYLES: list[Style | None] = [None]
_STYLE_IDS: dict[Style | None, int] = {None: 0}


def _style_id(style: Style | None) -> int:
    sid = _STYLE_IDS.get(style)
    if sid is None:
        sid = _STYLE_IDS[style] = len(_STYLES)
        _STYLES.append(style)
    return sid


def pack_line(segments: Iterable[Segment]) -> Line:
    """Pack rendered segments into a :data:`Line`.

    ``link`` is dropped from styles (a link style becomes an OSC 8 hyperlink), and so are
    control segments (cursor movement and the like; Markdown rendering makes none).
    """
    packed: list[int | str] = [0]
    width = 0
    for text, style, control in segments:
        if control or not text:
            continue
        if style is not None and style.link:
            style = style.update_link(None)
        packed.append(text)
        packed.append(_style_id(style))
        width += cell_len(text)
    packed[0] = width
    return tuple(packed)


def line_segments(line: Line) -> list[Segment]:
    """The segments of a packed :data:`Line` (its cell length is ``line[0]``)."""
    styles = _STYLES
    return [
        Segment(cast(str, line[index]), styles[cast(int, line[index + 1])])
        for index in range(1, len(line), 2)
    ]


BLANK_LINE: Final[Line] = (0,)
"""An empty line (the separator between blocks)."""


def render_block(
    block: Block,
    text: str,
    width: int,
    console: Console,
    options: ConsoleOptions,
    style: Style,
    code_theme: str = CODE_THEME,
) -> list[Line]:
    """Render one block of the document ``text`` at ``width`` cells on the base ``style``,
    fenced code in the Pygments theme ``code_theme`` (:func:`code_theme`)."""
    tokens = (
        block.tokens if block.tokens is not None else _PARSER.parse(text[block.start : block.end])
    )
    md = _TokensMarkdown(tokens, code_theme)
    render_options = options.update(width=width, height=None, highlight=False)
    lines = console.render_lines(md, render_options, style=style, pad=False)
    # rich emits empty lines around some elements (a list starts with one); blocks are
    # separated by exactly one blank line by the caller, as in rich's whole-document output.
    start, end = 0, len(lines)
    while start < end and not Segment.get_line_length(lines[start]):
        start += 1
    while end > start and not Segment.get_line_length(lines[end - 1]):
        end -= 1
    return [pack_line(line) for line in lines[start:end]]


def _group_blocks(tokens: list[Token], text: str) -> list[tuple[int, int, list[Token]]]:
    """Group a token stream into top-level blocks: ``(first_line, end_line, tokens)``."""
    groups: list[tuple[int, int, list[Token]]] = []
    current: list[Token] = []
    for token in tokens:
        current.append(token)
        if token.level == 0 and token.nesting <= 0:
            first = current[0].map
            start, end = (first[0], first[1]) if first else (0, 0)
            groups.append((start, end, current))
            current = []
    return groups


def _line_starts(text: str, upto: int) -> list[int]:
    """Character offsets of the first ``upto + 1`` lines of ``text`` (clamped to len)."""
    starts = [0]
    pos = 0
    find = text.find
    while len(starts) <= upto:
        nl = find("\n", pos)
        if nl < 0:
            starts.extend([len(text)] * (upto + 1 - len(starts)))
            break
        pos = nl + 1
        starts.append(pos)
    return starts


class IncrementalDocument:
    """Source text split into finished top-level blocks plus one live (last) block.

    :meth:`append` is O(len(text)); :meth:`update` re-parses only the tail (the live
    block and whatever arrived after it), so its cost does not depend on how long the
    document already is.
    """

    __slots__ = ("_closed", "_pending", "_tail_offset", "_text", "finished", "live")

    def __init__(self) -> None:
        self._closed = False
        self._text = ""
        self._pending: list[str] = []
        self._tail_offset = 0
        self.finished: list[Block] = []
        """Blocks that can no longer change, in order."""
        self.live: Block | None = None
        """The last block, which may still grow or change type."""

    @property
    def text(self) -> str:
        """The whole source received so far."""
        if self._pending:
            self._text += "".join(self._pending)
            self._pending.clear()
        return self._text

    @property
    def dirty(self) -> bool:
        """Text arrived since the last :meth:`update`."""
        return bool(self._pending)

    def append(self, text: str) -> None:
        """Add text (already sanitised); parsing waits for :meth:`update`."""
        if text:
            self._pending.append(text)

    def update(self) -> int:
        """Re-parse the tail; returns how many blocks became finished."""
        text = self.text
        tail = text[self._tail_offset :]
        groups = _group_blocks(_PARSER.parse(tail), tail)
        if not groups:
            self.live = None
            return 0
        last_end = max(end for _, end, _ in groups)
        starts = _line_starts(tail, last_end)
        finished = self.finished
        base = self._tail_offset
        for start, end, tokens in groups[:-1]:
            finished.append(Block(base + starts[start], base + starts[end], tokens))
        start, end, tokens = groups[-1]
        live = Block(base + starts[start], base + starts[end], tokens)
        if self._closed:
            # A complete document parsed again (after :meth:`forget`): nothing is live.
            finished.append(live)
            self.live = None
            self._tail_offset = len(text)
            return len(groups)
        self.live = live
        self._tail_offset = base + starts[start]
        return len(groups) - 1

    @property
    def closed(self) -> bool:
        """:meth:`close` was called: the text is complete."""
        return self._closed

    def close(self) -> None:
        """The text is complete: parse what is pending and finish the live block."""
        self.update()
        if self.live is not None:
            self.finished.append(self.live)
            self.live = None
        self._tail_offset = len(self._text)
        self._closed = True

    def complete(self) -> None:
        """The text is complete, but parse it only when it is needed (:meth:`update`):
        a saved message far off-screen is never parsed."""
        if not self.finished and self.live is None and not self._tail_offset:
            self._closed = True
        else:
            self.close()

    def forget(self) -> None:
        """Drop the blocks of a complete document (its lines are rendered and kept by
        the caller); the next :meth:`update` parses the whole text again."""
        if self._closed:
            self.finished = []
            self._tail_offset = 0


def estimate_height(text: str, width: int) -> int:
    """A cheap guess of the rendered height, used until a message is really rendered."""
    if width <= 0:
        return 0
    return sum((len(line) + width - 1) // width or 1 for line in text.split("\n"))
