"""Tools in the chat app (issue 14): the approval dialog before a call runs (run once,
always for this tool, deny), the call's block inside the answer, the Tools view, and a
stop while the dialog is open.  A real app (pilot) against the loopback server, with a
real functions file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.servers.llm_server import LLMServer
from tests.tui.fakes import until
from tokentide.chat.tool_setup import CommandLineTools
from tokentide.config.model import Profile, Settings
from tokentide.tui.app import ChatApp
from tokentide.tui.tool_dialog import ToolApprovalDialog
from tokentide.tui.tools_view import ToolsView
from tokentide.tui.widgets.composer import Composer
from tokentide.tui.widgets.messages import AssistantMessage
from tokentide.tui.widgets.tool_block import ToolBlock

SIZE = (110, 34)

FUNCTIONS = '''
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b
'''


@pytest.fixture
def functions(tmp_path: Path) -> Path:
    path = tmp_path / "calc.py"
    path.write_text(FUNCTIONS)
    return path


def app_for(server: LLMServer, db: Path, functions: Path, tag: str, **knobs: Any) -> ChatApp:
    url = server.url(
        tag=tag, tool="add", tool_once=1, echo=1, tool_args='{"a": 2, "b": 3}', **knobs
    )
    prof = Profile(name="srv", api="openai", url=url, model="m")
    settings = Settings(profiles={"srv": prof}, default="srv")
    return ChatApp(
        settings, prof, history_path=db, tools=CommandLineTools(functions=(str(functions),))
    )


async def send(app: ChatApp, pilot: Any, text: str) -> None:
    await until(pilot, lambda: app.chat.session.tools is not None)
    composer = app.query_one(Composer)
    composer.focus()
    composer.set_prompt(text)
    await pilot.press("enter")


def chats(server: LLMServer, tag: str) -> list[Any]:
    """The chat requests of a test (the app may also ask for the model list)."""
    return [r for r in server.records if r.tag == tag and r.body]


def blocks(app: ChatApp) -> list[str]:
    return [str(b._line.render()) for b in app.chat.query(ToolBlock)]


async def test_a_call_waits_for_the_user_then_runs_inside_the_answer(
    server: LLMServer, db: Path, functions: Path
) -> None:
    app = app_for(server, db, functions, "app-tools")
    async with app.run_test(size=SIZE) as pilot:
        await send(app, pilot, "what is 2+3?")
        await until(pilot, lambda: isinstance(app.screen, ToolApprovalDialog))
        dialog = app.screen
        assert isinstance(dialog, ToolApprovalDialog) and dialog.call.name == "add"
        assert len(chats(server, "app-tools")) == 1  # nothing ran yet
        await pilot.press("y")
        await until(pilot, lambda: not app.chat.generating)
        assert blocks(app) == ["▸ calc.add(a=2, b=3) → 5"]
        answer = app.query_one(AssistantMessage)
        assert answer.main.source.endswith("5")  # the model got the result back
        # Another prompt: asked again ("run once" was once).
        await send(app, pilot, "again")
        await until(pilot, lambda: isinstance(app.screen, ToolApprovalDialog))
        await pilot.press("a")
        await until(pilot, lambda: not app.chat.generating)
        await send(app, pilot, "and again")  # "always": no dialog this time
        await until(pilot, lambda: not app.chat.generating and len(blocks(app)) == 3)
        assert not isinstance(app.screen, ToolApprovalDialog)


async def test_a_denied_call_is_shown_and_told_to_the_model(
    server: LLMServer, db: Path, functions: Path
) -> None:
    app = app_for(server, db, functions, "app-tools-deny")
    async with app.run_test(size=SIZE) as pilot:
        await send(app, pilot, "add")
        await until(pilot, lambda: isinstance(app.screen, ToolApprovalDialog))
        await pilot.press("n")
        await until(pilot, lambda: not app.chat.generating)
        assert blocks(app)[0].startswith("▸ calc.add(a=2, b=3) ✗ not run")
        last = [r for r in server.records if r.tag == "app-tools-deny" and r.body][-1]
        assert "did not allow" in last.body["messages"][-1]["content"]


async def test_stopping_while_the_dialog_is_open_closes_it_and_keeps_the_answer(
    server: LLMServer, db: Path, functions: Path
) -> None:
    app = app_for(server, db, functions, "app-tools-stop")
    async with app.run_test(size=SIZE) as pilot:
        await send(app, pilot, "add")
        await until(pilot, lambda: isinstance(app.screen, ToolApprovalDialog))
        app.chat.action_stop()
        await until(pilot, lambda: not app.chat.generating)
        assert not isinstance(app.screen, ToolApprovalDialog)
        turn = app.chat.session.branch[-1]
        assert turn.status == "stopped" and turn.text.startswith("add")
        assert len(chats(server, "app-tools-stop")) == 1
        assert blocks(app) == ["▸ add(a=2, b=3) ✗ not run: stopped before it ran"]
        # Esc in the dialog stops the answer too (it is the stop key everywhere).
        await send(app, pilot, "add again")
        await until(pilot, lambda: isinstance(app.screen, ToolApprovalDialog))
        await pilot.press("escape")
        await until(pilot, lambda: not app.chat.generating)
        assert app.chat.session.branch[-1].status == "stopped"
        assert len(chats(server, "app-tools-stop")) == 2  # nothing sent after the stop


async def test_the_tools_view_lists_sources_and_tools(
    server: LLMServer, db: Path, functions: Path
) -> None:
    app = app_for(server, db, functions, "app-tools-view")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.chat.session.tools is not None)
        app.chat.tools.show()
        await until(
            pilot, lambda: isinstance(app.screen, ToolsView) and app.screen.query("#tools-body")
        )
        text = str(app.screen.query_one("#tools-body").render())
        assert "calc · functions file · ready" in text and "▸ add: Add two numbers." in text
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, ToolsView))


async def test_a_saved_answer_shows_its_calls_when_reopened(
    server: LLMServer, db: Path, functions: Path
) -> None:
    app = app_for(server, db, functions, "app-tools-saved")
    async with app.run_test(size=SIZE) as pilot:
        await send(app, pilot, "what is 2+3?")
        await until(pilot, lambda: isinstance(app.screen, ToolApprovalDialog))
        await pilot.press("y")
        await until(pilot, lambda: not app.chat.generating)
    again = ChatApp(app.settings, app.profile, history_path=db, continue_last=True)
    async with again.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: bool(blocks(again)))
        assert blocks(again) == ["▸ add(a=2, b=3) → 5"]  # saved: the call, not its source
