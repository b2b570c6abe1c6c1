"""Background rendering of a long saved conversation: only near the viewport, far lines
dropped under a budget and rendered again on return, nothing visible moves (issue 17)."""

from __future__ import annotations

import pytest
from textual.app import App, ComposeResult
from textual.containers import VerticalScroll
from textual.strip import Strip
from textual.widgets import Static

from tests.tui.fakes import until
from tokentide.tui.widgets.markdown_background import (
    _BackgroundRenderer,
    _renderers,
    rendering_settled,
)
from tokentide.tui.widgets.markdown_view import MarkdownMessage

SIZE = (100, 30)


def answer(k: int) -> str:
    # Wrapped paragraphs, a list and a fence: the estimated height is wrong, so
    # rendering corrects it.
    return (
        f"## Answer {k}\n\n"
        + ("word " * 45 + "\n\n") * 2
        + "- one\n- two\n  - nested\n\n"
        + f"```python\nprint({k})\n```\n\nEND{k}\n"
    )


class Conversation(App[None]):
    def __init__(self, count: int) -> None:
        super().__init__()
        self.messages = [MarkdownMessage(answer(k)) for k in range(count)]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="conv"):
            for k, message in enumerate(self.messages):
                yield Static(f"question {k}")
                yield message


def rendered(app: Conversation) -> list[int]:
    return [k for k, m in enumerate(app.messages) if m._cache.finished]


def screen_strips(app: App[None], width: int | None = None) -> list[Strip]:
    """The painted rows (cropped to ``width``: without the scrollbar, whose thumb does
    follow a change of the content's height)."""
    strips = app.screen._compositor.render_strips()
    return [strip.crop(0, width) if width is not None else strip for strip in strips]


def fresh_lines(text: str, width: int, app: App[None]) -> list[tuple[str, list[object]]]:
    """What a new widget renders for ``text`` at ``width`` (mounted nowhere near)."""
    probe = MarkdownMessage(text)
    probe._cache.style = app.query_one(MarkdownMessage).rich_style
    probe._sync(width, deadline=None)
    return [(strip.text, list(strip)) for strip in probe.lines]


async def settled(pilot: object, app: Conversation) -> None:
    await until(pilot, lambda: bool(rendered(app)) and rendering_settled(app))


async def test_only_messages_near_the_viewport_render() -> None:
    app = Conversation(150)
    async with app.run_test(size=SIZE) as pilot:
        conv = app.query_one("#conv", VerticalScroll)
        conv.anchor()
        await settled(pilot, app)
        # (The first messages may have been painted before the view reached the end.)
        near = [k for k in rendered(app) if k >= 10]
        assert near == list(range(near[0], 150))  # the end, contiguous
        assert len(near) < 40  # not the whole history
        margin = _renderers[app]._margin(app.messages[0])
        for k in range(10, 150):
            message = app.messages[k]
            distance = round(conv.scroll_y) - message.virtual_region.bottom
            if k in near:
                assert message._is_exact() and message.virtual_region.height == len(message.lines)
            else:
                assert distance > margin - 40  # outside the window (give or take one)
                assert not message._is_exact()


async def test_scrolling_up_renders_what_comes_into_view() -> None:
    app = Conversation(150)
    async with app.run_test(size=SIZE) as pilot:
        conv = app.query_one("#conv", VerticalScroll)
        conv.anchor()
        await settled(pilot, app)
        assert 60 not in rendered(app)
        target = app.messages[60]
        conv.release_anchor()
        conv.scroll_to(y=target.virtual_region.y, animate=False, immediate=True)
        await until(pilot, lambda: target._is_exact() and rendering_settled(app))
        # The window around the new position, not only what is painted: messages a
        # screen or more above and below are ready too.
        assert {55, 56, 57, 63, 64, 65} <= set(rendered(app))
        assert "END60" in "\n".join(strip.text for strip in screen_strips(app))


async def test_far_lines_are_dropped_and_render_again_the_same(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_BackgroundRenderer, "KEEP_LINES", 100)
    app = Conversation(150)
    async with app.run_test(size=SIZE) as pilot:
        conv = app.query_one("#conv", VerticalScroll)
        conv.anchor()
        await settled(pilot, app)
        last = app.messages[-1]
        width = last._width
        height = last.virtual_region.height
        assert last._cache.finished
        conv.release_anchor()
        conv.scroll_home(animate=False, immediate=True)
        await until(pilot, lambda: app.messages[0]._is_exact() and rendering_settled(app))
        await until(pilot, lambda: not last._cache.finished)  # far away now: freed
        assert not last._strips and not last._is_exact()
        assert len(rendered(app)) < 40
        assert last.virtual_region.height == height  # its place is kept: nothing moves
        conv.scroll_end(animate=False, immediate=True)
        await until(pilot, lambda: bool(last._cache.finished) and rendering_settled(app))
        assert last.virtual_region.height == height
        assert [(strip.text, list(strip)) for strip in last.lines] == fresh_lines(
            last.source, width, app
        )
        assert "END149" in "\n".join(strip.text for strip in screen_strips(app))


async def test_off_screen_work_changes_nothing_on_screen(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Height corrections above and below the viewport keep the painted rows as they
    are (the scroll position moves with the content above)."""
    monkeypatch.setattr(_BackgroundRenderer, "WINDOW_SCREENS", 0.0)
    monkeypatch.setattr(_BackgroundRenderer, "WINDOW_MIN_ROWS", 0)
    app = Conversation(60)
    async with app.run_test(size=SIZE) as pilot:
        conv = app.query_one("#conv", VerticalScroll)
        target = app.messages[30]
        await until(pilot, lambda: conv.max_scroll_y > 0 and target.virtual_region.y > 0)
        conv.scroll_to(y=target.virtual_region.y, animate=False, immediate=True)
        await until(pilot, lambda: target._is_exact() and rendering_settled(app))
        await pilot.pause()
        width = conv.scrollable_content_region.width
        before = screen_strips(app, width)
        assert "END30" in "\n".join(strip.text for strip in before)
        above = app.messages[20:30]
        estimated = [m._reported_height for m in above]
        assert not any(m._is_exact() for m in above)

        monkeypatch.setattr(_BackgroundRenderer, "WINDOW_MIN_ROWS", 400)  # wider window
        _renderers[app]._arm()
        await until(pilot, lambda: all(m._is_exact() for m in above) and rendering_settled(app))
        await pilot.pause()
        assert [m.size.height for m in above] != estimated  # heights were corrected
        assert screen_strips(app, width) == before
