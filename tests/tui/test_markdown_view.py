"""MarkdownMessage: streamed rendering equals one-shot rendering, resize, safety, follow."""

from __future__ import annotations

import asyncio
import gc
import itertools
import random
import weakref

import pytest
from textual.app import App, ComposeResult
from textual.containers import VerticalScroll
from textual.strip import Strip
from textual.widget import Widget

from tests.tui.fakes import until
from tokentide.tui.widgets.markdown_view import MarkdownMessage, rendering_settled, settle_gc

RICH_TEXT = """# Release notes

Some **bold**, some *italic*, some `inline code` and a [link](https://example.com/x).

## Lists

- first item with **emphasis**
- second item
  - nested item
- third item

1. one
2. two
3. three

> A block quote with `code`
> over two lines.

| name | value | note |
|------|------:|------|
| a | 1 | `x` |
| b | 22 | *y* |

```python
def greet(name: str) -> str:
    \"\"\"Say hello.\"\"\"
    return f"Hello, {name}!"
```

Text after the fence, long enough to wrap at a narrow width: the quick brown fox jumps
over the lazy dog again and again until the line is clearly longer than the terminal.

---

Final paragraph.
"""


class MessagesApp(App[None]):
    def __init__(self, *widgets: Widget) -> None:
        super().__init__()
        self._widgets = widgets

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="conv"):
            yield from self._widgets


def chunks(text: str, rng: random.Random) -> list[str]:
    out: list[str] = []
    pos = 0
    while pos < len(text):
        step = rng.choice((1, 2, 3, 4, 5, 8, 13, 40))
        out.append(text[pos : pos + step])
        pos += step
    return out


def texts(lines: list[Strip]) -> list[str]:
    return [line.text.rstrip() for line in lines]


async def stream_into(
    pilot: object, msg: MarkdownMessage, parts: list[str], rng: random.Random
) -> None:
    for part in parts:
        msg.append(part)
        roll = rng.random()
        if roll < 0.2:
            msg._frame()  # a render in the middle of the stream, whatever the timing
        elif roll < 0.3:
            await asyncio.sleep(0)


@pytest.mark.parametrize("seed", range(6))
async def test_streamed_render_equals_one_shot(seed: int) -> None:
    rng = random.Random(seed)
    one_shot = MarkdownMessage(RICH_TEXT)
    live = MarkdownMessage(streaming=True)
    app = MessagesApp(one_shot, live)
    async with app.run_test(size=(80, 60)) as pilot:
        await stream_into(pilot, live, chunks(RICH_TEXT, rng), rng)
        await pilot.pause()
        live._frame()
        # Before finish(): the incremental state alone already equals the one-shot render.
        assert live.lines == one_shot.lines
        assert live.source == RICH_TEXT
        live.finish()
        assert not live.streaming
        assert live.lines == one_shot.lines
        rendered = "\n".join(texts(live.lines))
        for expected in ("Release notes", "inline code", "link (https://example.com/x)"):
            assert expected in rendered
        assert "def greet(name: str) -> str:" in rendered
        assert "nested item" in rendered
        assert "**" not in rendered  # bold markers were interpreted


async def test_last_block_changes_type() -> None:
    live = MarkdownMessage(streaming=True)
    app = MessagesApp(live)
    async with app.run_test(size=(60, 30)):
        live.append("Intro paragraph.\n\nname | value\n")
        live._frame()
        assert "name | value" in "\n".join(texts(live.lines))
        live.append("-----|------\nx | 1\n")
        live._frame()
        table = "\n".join(texts(live.lines))
        assert "name | value" not in table  # now a table, not a paragraph
        assert "─" in table and "x" in table
        live.append("\n```python\nx = 1\n")  # an open fence is the last block
        live._frame()
        assert any(line.strip() == "x = 1" for line in texts(live.lines))
        live.append("y = 2\n```\n\nAfter **bold**.")
        live._frame()
        lines = texts(live.lines)
        assert lines[-1] == "After bold."
        assert any(line.strip() == "y = 2" for line in lines)
        live.finish()
        assert texts(live.lines)[-1] == "After bold."


async def test_resize_rewraps() -> None:
    paragraph = "word " * 60 + "\n\n- item " + "long " * 30 + "\n"
    live = MarkdownMessage(streaming=True)
    app = MessagesApp(live)
    async with app.run_test(size=(80, 30)) as pilot:
        live.append(paragraph)
        await pilot.pause()
        wide = live.lines
        assert all(line.cell_length <= 80 for line in wide)
        await pilot.resize_terminal(40, 30)
        await pilot.pause()
        narrow = live.lines
        assert len(narrow) > len(wide)
        assert all(line.cell_length <= 40 for line in narrow)
        assert live.size.height == len(narrow)
        # Same as a message created at that width.
        fresh = MarkdownMessage(paragraph)
        await app.query_one("#conv").mount(fresh)
        await pilot.pause()
        assert fresh.lines == narrow


PAYLOADS = [
    "\x1b]52;c;ZXZpbCBjbGlwYm9hcmQ=\x07",  # OSC 52 clipboard write
    "\x1b[2J\x1b[H",  # clear screen, cursor home
    "\x9b31mred\x9b0m",  # C1 CSI
    "\x1b]8;;https://evil.example\x1b\\click me\x1b]8;;\x1b\\",  # OSC 8 hyperlink
    "\x1bP+q544e\x1b\\",  # DCS
    "\x1b]0;title\x07",  # window title
]


@pytest.mark.parametrize("seed", range(3))
async def test_escape_sequences_never_reach_segments(seed: int) -> None:
    rng = random.Random(seed)
    text = (
        "# Title " + PAYLOADS[0] + "\n\nPara " + PAYLOADS[1] + " **bold " + PAYLOADS[2] + "**\n\n"
        "- item " + PAYLOADS[3] + "\n\n> quote " + PAYLOADS[4] + "\n\n"
        "```\ncode " + PAYLOADS[5] + "\n```\n\n[a link](https://example.com/\x1b[31m)\n"
    )
    live = MarkdownMessage(streaming=True)
    complete = MarkdownMessage(text)
    app = MessagesApp(live, complete)
    async with app.run_test(size=(80, 60)) as pilot:
        for part in chunks(text, rng):
            live.append(part)
            if rng.random() < 0.3:
                live._frame()
        live.finish()
        await pilot.pause()
        for msg in (live, complete):
            assert "\x1b" not in msg.source
            for line in msg.lines:
                for segment in line:
                    assert "\x1b" not in segment.text
                    assert not any("\x80" <= c <= "\x9f" for c in segment.text)
                    assert segment.style is None or not segment.style.link
        # What the compositor actually paints: no escape, no hyperlink.
        for strip in app.screen._compositor.render_strips():
            for segment in strip:
                assert "\x1b" not in segment.text
                assert segment.style is None or not segment.style.link
        assert "click me" in "\n".join(texts(live.lines))


async def test_follows_bottom_after_fast_stream() -> None:
    live = MarkdownMessage(streaming=True)
    history = [MarkdownMessage(f"## Earlier answer {k}\n\n" + "text " * 200) for k in range(5)]
    app = MessagesApp(*history, live)
    words = [f"w{k} " if k % 97 else f"\n\n## Heading {k}\n\n" for k in range(20_000)]
    async with app.run_test(size=(100, 30)) as pilot:
        conv = app.query_one("#conv", VerticalScroll)
        conv.anchor()
        for k, word in enumerate(words):
            live.append(word)
            if k % 500 == 0:
                await asyncio.sleep(0)  # a fast source: many tokens per loop iteration

        def painted() -> str:
            return "\n".join(strip.text for strip in app.screen._compositor.render_strips())

        # A loaded machine paints later, not differently: wait for the last word.
        await until(pilot, lambda: "w19999" in painted())
        assert conv.max_scroll_y > 0
        assert conv.scroll_y == conv.max_scroll_y
        live.finish()
        await pilot.pause()
        assert conv.scroll_y == conv.max_scroll_y


async def test_saved_conversation_renders_lazily_and_settles() -> None:
    """The messages near the viewport render and get their real height; far ones wait
    (tests/tui/test_background_render.py covers the window in detail)."""
    texts_ = [f"## Answer {k}\n\n" + ("para " * 80 + "\n\n") * 3 + f"END{k}\n" for k in range(60)]
    messages = [MarkdownMessage(text) for text in texts_]
    app = MessagesApp(*messages)
    async with app.run_test(size=(100, 30)) as pilot:
        conv = app.query_one("#conv", VerticalScroll)
        conv.anchor()
        await until(pilot, lambda: messages[-4]._is_exact() and rendering_settled(app))
        await pilot.pause()
        near = [m for m in messages if m._is_exact()]
        assert messages[-1] in near and len(near) < len(messages) // 2
        for m in near:
            assert m.virtual_region.height == len(m.lines)
        screen_text = "\n".join(strip.text for strip in app.screen._compositor.render_strips())
        assert "END59" in screen_text
        assert conv.scroll_y == conv.max_scroll_y


async def test_finished_lines_cost_the_gc_nothing() -> None:
    """Rendered lines are packed tuples the cyclic GC stops tracking (stall-free GC)."""
    msg = MarkdownMessage(RICH_TEXT)
    app = MessagesApp(msg)
    async with app.run_test(size=(80, 60)) as pilot:
        await pilot.pause()
        assert texts(msg.lines)  # rendered
        gc.collect()
        lines = msg._cache.finished
        assert lines
        assert not any(gc.is_tracked(line) for line in lines)


class _Cycle:
    def __init__(self) -> None:
        self.me = self


def test_settle_gc_freezes_and_later_collects_frozen_garbage() -> None:
    try:
        collected: list[object] = []
        cycle = _Cycle()
        ref = weakref.ref(cycle, collected.append)
        settle_gc()
        assert gc.get_freeze_count() > 0
        del cycle
        gc.collect()
        assert ref() is not None  # frozen: ordinary collections leave it alone
        settle_gc()  # unfreezes first, so the garbage frozen earlier is collected now
        assert ref() is None
    finally:
        gc.unfreeze()


async def test_full_collections_wait_while_a_message_streams() -> None:
    before = gc.get_threshold()
    one, two = MarkdownMessage(streaming=True), MarkdownMessage(streaming=True)
    app = MessagesApp(one, two, MarkdownMessage("saved"))
    async with app.run_test(size=(60, 20)) as pilot:
        await pilot.pause()
        assert gc.get_threshold()[:2] == before[:2]
        assert gc.get_threshold()[2] > 100_000  # deferred while anything streams
        one.append("a")
        one.finish()
        assert gc.get_threshold()[2] > 100_000  # the other one still streams
        await two.remove()  # removed while streaming: its hold goes with it
        assert gc.get_threshold() == before
        third = MarkdownMessage(streaming=True)
        await app.query_one(VerticalScroll).mount(third)
        assert gc.get_threshold()[2] > 100_000
    assert gc.get_threshold() == before  # the app's exit unmounts it


@pytest.mark.parametrize("finish_at_once", [False, True])
async def test_a_burst_is_taken_in_over_several_frames_and_renders_the_same(
    finish_at_once: bool,
) -> None:
    """A whole answer in one piece (a non-streamed reply, a predictor's huge yield) is
    fed to the parser a frame's worth at a time, so the event loop is never blocked for
    the whole text (issue 10: one 10 MB piece froze the app for ~19 s); the result is
    the same as a one-shot render, and ``source`` holds all of it at once."""
    text = RICH_TEXT * 220  # > 4 × FRAME_CHARS
    assert len(text) > 4 * MarkdownMessage.FRAME_CHARS
    one_shot = MarkdownMessage(text)
    live = MarkdownMessage(streaming=True)
    app = MessagesApp(one_shot, live)
    async with app.run_test(size=(80, 60)) as pilot:
        await pilot.pause()
        live.append(text)
        if finish_at_once:
            live.finish()
        assert live.source == text  # nothing waits out of sight of the caller
        taken = [len(live._doc.text)]
        while live._intake.waiting:
            live._frame()
            taken.append(len(live._doc.text))
        assert len(taken) >= 4
        assert all(b - a <= MarkdownMessage.FRAME_CHARS for a, b in itertools.pairwise(taken))
        if not finish_at_once:
            live.finish()
        await until(pilot, lambda: not live._draining)
        assert not live.streaming
        assert live.lines == one_shot.lines


SELECTABLE = "# Title\n\nFirst paragraph with **bold** words.\n\nSecond paragraph here.\n"


async def test_dragging_the_mouse_selects_what_is_shown_and_copies_it() -> None:
    """Issue 11: selecting an answer with the mouse copied the literal text
    "MarkdownMessage"; now the rendered text under the drag is selected, highlighted,
    and copied (Textual's copy key, OSC 52 in a terminal)."""
    msg = MarkdownMessage(SELECTABLE)
    app = MessagesApp(msg)
    async with app.run_test(size=(80, 20)) as pilot:
        await until(pilot, lambda: any("First paragraph" in t for t in texts(msg.lines)))
        rows = texts(msg.lines)
        y = next(i for i, row in enumerate(rows) if "First paragraph" in row)
        x = rows[y].index("First")
        await pilot.mouse_down(msg, offset=(x, y))
        end = x + len("First paragraph") - 1  # the cell under the mouse is included
        await pilot.hover(msg, offset=(end, y))
        await pilot.mouse_up(msg, offset=(end, y))
        await until(pilot, lambda: app.screen.get_selected_text() is not None)
        assert app.screen.get_selected_text() == "First paragraph"
        # The selected cells are painted in the selection style.
        painted = msg.render_line(y)
        selection = app.screen.get_component_rich_style("screen--selection")
        chosen = "".join(
            s.text for s in painted if s.style and s.style.bgcolor == selection.bgcolor
        )
        assert chosen == "First paragraph"
        app.screen.action_copy_text()
        assert app.clipboard == "First paragraph"


async def test_selecting_a_whole_answer_copies_its_markdown() -> None:
    msg = MarkdownMessage(SELECTABLE)
    app = MessagesApp(msg)
    async with app.run_test(size=(80, 20)) as pilot:
        await until(pilot, lambda: bool(msg.lines))
        from textual.selection import Selection

        assert msg.get_selection(Selection(None, None)) == (SELECTABLE, "\n")
