"""The chat's widgets stand on their own (issue 13, item 7).

Each is mounted in a plain Textual ``App`` with no stylesheet (no ``CSS_PATH``): it
must lay itself out from its own ``DEFAULT_CSS``.  Code blocks follow the app's light
or dark theme; the widgets' messages carry their ``control`` (so ``@on(..., selector)``
works); keys come from the keymap Textual applied, never from the app's private copy.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from rich.syntax import Syntax
from textual import on
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widget import Widget

from tests.tui.fakes import ScriptedBackend, until
from tokentide.backends.base import GenerationRequest
from tokentide.errors import ServerError
from tokentide.generation import Generation
from tokentide.tui.branch_view import EarlierMessages
from tokentide.tui.conversation_view import ConversationView, NewTextBadge
from tokentide.tui.dialogs import ConfirmDialog, TextDialog
from tokentide.tui.widgets.composer import Composer
from tokentide.tui.widgets.keys import active_binding, key_display
from tokentide.tui.widgets.markdown_render import CODE_THEME, CODE_THEME_LIGHT, code_theme
from tokentide.tui.widgets.markdown_view import MarkdownMessage, rendering_settled
from tokentide.tui.widgets.messages import AssistantMessage, ErrorMessage, NodeBlock, UserMessage
from tokentide.tui.widgets.sidebar import ConversationItem, Sidebar
from tokentide.tui.widgets.status import StatusLine

SIZE = (80, 40)


class Bare(App[None]):
    """No CSS_PATH, no CSS: only the widgets' own."""

    def __init__(self, *widgets: Widget) -> None:
        super().__init__()
        self._widgets = widgets
        self.received: list[Message] = []

    def compose(self) -> ComposeResult:
        yield from self._widgets


async def test_messages_composer_and_status_line_lay_out_without_the_app_stylesheet() -> None:
    user = UserMessage("first line\nsecond line")
    answer = AssistantMessage("A short answer.", nodes=[("n1", "from node one")])
    error = ErrorMessage("the server went away")
    composer = Composer()
    status = StatusLine()
    app = Bare(user, answer, error, composer, status)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: rendering_settled(app))
        # A message is as high as its text, under a one-line gap, its text one cell in.
        assert user.region.height == 2
        assert user.region.y == 1
        assert user.content_region.x == user.region.x + 1
        assert error.region.height == 2  # the message and the retry line
        assert error.region.y == answer.region.bottom + 1
        # The answer holds its Markdown line and its node's block (a label and a line,
        # under a gap): not the screen's remaining height, as a bare Vertical would take.
        node = answer.query_one(NodeBlock)
        assert node.region.height == 2
        assert answer.region.height == 1 + 1 + 2
        assert answer.main.region.width == SIZE[0] - 2
        # The composer: at least three lines, at most twelve, whatever it holds.
        assert composer.region.height == 3
        composer.set_prompt("\n".join(f"line {n}" for n in range(30)))
        await until(pilot, lambda: composer.region.height == 12)
        # The status line is one line, even for a text of two.
        status.show_use("first\nsecond")
        await pilot.pause()
        assert status.region.height == 1
        assert status.region.bottom <= SIZE[1]


async def test_the_conversation_view_and_the_sidebar_lay_out_without_the_app_stylesheet() -> None:
    view = ConversationView()
    sidebar = Sidebar()
    app = Bare(sidebar, view)
    async with app.run_test(size=SIZE) as pilot:
        await sidebar.build()
        sidebar.show([ConversationItem("a", "Bread"), ConversationItem("b", "Monads")])
        await pilot.pause()
        assert sidebar.region.width == 34
        search = sidebar.query_one("#conversation-search")
        listing = sidebar.query_one("#conversations")
        assert listing.region.y == search.region.bottom + 1  # a line between them
        assert listing.region.bottom == sidebar.region.bottom  # the list fills the rest
        assert view.region.height == SIZE[1] - sidebar.region.height  # one fraction each
        await view.mount(UserMessage("hello"))
        await pilot.pause()
        assert view.query_one(UserMessage).content_region.x == view.region.x + 2  # padding


async def test_dialogs_lay_out_without_the_app_stylesheet() -> None:
    app = Bare()
    async with app.run_test(size=SIZE) as pilot:
        for dialog in (ConfirmDialog("Delete this conversation?"), TextDialog("New title")):
            await app.push_screen(dialog)
            await pilot.pause()
            box = dialog.query_one(".dialog-box")
            assert box.region.width == 60
            assert box.region.x == (SIZE[0] - 60) // 2
            assert box.region.y > 0 and box.region.bottom < SIZE[1]  # in the middle
            assert box.region.height < SIZE[1] // 2  # as high as what it holds
            app.pop_screen()
            await pilot.pause()


CODE = "Some code:\n\n```python\ndef rate(tokens: int) -> float:\n    return tokens / 2\n```\n"


def _code_background(message: MarkdownMessage) -> str | None:
    """The background of the first line of code, as ``#rrggbb``."""
    for line in message.lines:
        if "def" in line.text:
            for segment in line:
                if "def" in segment.text and segment.style and segment.style.bgcolor:
                    return str(segment.style.bgcolor.get_truecolor().hex)
    return None


def _background_of(theme: str) -> str:
    color = Syntax.get_theme(theme).get_background_style().bgcolor
    assert color is not None
    return str(color.get_truecolor().hex)


async def test_code_blocks_follow_the_apps_light_or_dark_theme() -> None:
    assert code_theme(dark=True) == CODE_THEME and code_theme(dark=False) == CODE_THEME_LIGHT
    dark, light = _background_of(CODE_THEME), _background_of(CODE_THEME_LIGHT)
    assert dark != light
    message = MarkdownMessage(CODE)
    app = Bare(VerticalScroll(message))
    app.theme = "textual-dark"
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: _code_background(message) is not None)
        assert _code_background(message) == dark
        app.theme = "textual-light"
        await until(pilot, lambda: _code_background(message) == light)
        app.theme = "nord"  # another dark theme
        await until(pilot, lambda: _code_background(message) == dark)
        assert message.source == CODE


async def test_a_streamed_message_under_a_light_theme_has_light_code() -> None:
    app = Bare(VerticalScroll(MarkdownMessage(streaming=True, id="live")))
    app.theme = "textual-light"
    async with app.run_test(size=SIZE) as pilot:
        live = app.query_one("#live", MarkdownMessage)
        live.append(CODE)
        live.finish()
        await until(pilot, lambda: _code_background(live) is not None)
        assert _code_background(live) == _background_of(CODE_THEME_LIGHT)


class Listening(Bare):
    """Records the widgets' messages through selectors, which need ``control``."""

    @on(Sidebar.Opened, "#side")
    @on(Sidebar.Search, "#side")
    @on(Sidebar.RenameRequested, "#side")
    @on(Sidebar.DeleteRequested, "#side")
    @on(NewTextBadge.Clicked, "#badge")
    @on(EarlierMessages.Wanted, "#earlier")
    @on(Composer.Submitted, "#prompt")
    def _record(self, event: Message) -> None:
        self.received.append(event)


async def test_the_widgets_messages_are_dataclasses_with_their_control() -> None:
    sidebar = Sidebar(id="side")
    badge = NewTextBadge("↓ new text", id="badge")
    earlier = EarlierMessages("↑ 3 earlier messages", id="earlier")
    composer = Composer(id="prompt")
    app = Listening(sidebar, badge, earlier, composer)
    async with app.run_test(size=SIZE) as pilot:
        await sidebar.build()
        items = [ConversationItem("c1", "Bread"), ConversationItem("c2", "Monads")]
        sidebar.show(items, current="c2")
        await pilot.pause()
        sidebar.query_one("#conversations").focus()
        await pilot.press("enter", "f2", "delete")
        await pilot.click(NewTextBadge)
        await pilot.click(EarlierMessages)
        composer.focus()
        await pilot.press(*"hi", "enter")
        sidebar.query_one("#conversation-search").focus()
        await pilot.press("m")
        await until(pilot, lambda: len(app.received) == 7)
    kinds = [type(event) for event in app.received]
    assert set(kinds) == {
        Sidebar.Opened,
        Sidebar.Search,
        Sidebar.RenameRequested,
        Sidebar.DeleteRequested,
        NewTextBadge.Clicked,
        EarlierMessages.Wanted,
        Composer.Submitted,
    }
    for event in app.received:
        assert dataclasses.is_dataclass(event)
    by_kind: dict[type[Message], Any] = {type(event): event for event in app.received}
    assert by_kind[Sidebar.Opened].conversation_id == "c2"
    assert by_kind[Sidebar.Opened].control is sidebar
    assert by_kind[Sidebar.RenameRequested].conversation_id == "c2"
    assert by_kind[Sidebar.DeleteRequested].control is sidebar
    assert by_kind[Sidebar.Search].query == "m"
    assert by_kind[NewTextBadge.Clicked].control is badge
    assert by_kind[EarlierMessages.Wanted].control is earlier
    assert by_kind[Composer.Submitted].text == "hi"
    assert by_kind[Composer.Submitted].control is composer


class Keyed(Bare):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("ctrl+r", "retry", "Retry", id="retry")]

    def action_retry(self) -> None:
        pass


async def test_the_composer_sends_with_the_key_the_keymap_gives() -> None:
    composer = Composer(id="prompt")
    app = Listening(composer)
    app.set_keymap({"send": "ctrl+s", "newline": "enter"})
    async with app.run_test(size=SIZE) as pilot:
        composer.focus()
        await pilot.press("a", "enter", "b")
        assert composer.text == "a\nb"
        assert app.received == []
        await pilot.press("ctrl+s")
        await until(pilot, lambda: len(app.received) == 1)
        submitted = app.received[0]
        assert isinstance(submitted, Composer.Submitted) and submitted.text == "a\nb"


async def test_key_displays_come_from_the_app_and_its_keymap() -> None:
    status = StatusLine()
    app = Keyed(status)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        binding = active_binding(screen, "retry")
        assert binding is not None and binding.key == "ctrl+r"
        assert key_display(screen, "retry", "?") == app.get_key_display(binding) == "^r"
        assert key_display(screen, "no-such-binding", "?") == "?"
        app.set_keymap({"retry": "f5"})
        await pilot.pause()
        assert key_display(screen, "retry", "?") == "f5"
        # The status line names the keys it is given (the chat screen gives it these).
        status.set_keys(stop="esc", retry=key_display(screen, "retry", "?"))
        failing = ScriptedBackend([ServerError("the model crashed")])
        generation = Generation(failing, GenerationRequest.from_prompt("hi")).start()
        status.track(generation)
        await generation.wait()
        status.refresh_now()
        assert str(status.content) == "error: the model crashed · f5 retries"
