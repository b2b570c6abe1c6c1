"""Snapshots of tools in the app: the approval dialog over the answer that asked, and
the finished answer with the call's block above its text.  Frozen clock, a scripted
backend that declares it calls tools, a committed functions file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual.pilot import Pilot

from tests.tui.fakes import ScriptedBackend
from tests.tui.test_chat_snapshots import SIZE, SnapCompare, send, steady_cursor
from tokentide.backends.events import Finish, TextDelta, ToolCallRequested
from tokentide.chat.tool_setup import CommandLineTools
from tokentide.config.model import Profile, Settings
from tokentide.tui.app import ChatApp
from tokentide.tui.tool_dialog import ToolApprovalDialog

__all__ = ["steady_cursor"]  # the autouse fixture, used here too

FUNCTIONS = "tests/tui/snapshot_tools.py"  # relative: the same text on every machine


class ToolBackend(ScriptedBackend):
    calls_tools = True


def make_app(tmp_path: Path) -> ChatApp:
    backend = ToolBackend(
        [TextDelta("Let me add them."), ToolCallRequested("add", '{"a": 2, "b": 3}', "c1"),
         Finish("tool_calls")],
        [TextDelta("2 + 3 is **5**."), Finish("stop")],
    )  # fmt: skip
    profile = Profile(name="main", api="openai", url="http://scripted.test/v1", model="tiny-model")
    return ChatApp(
        Settings(profiles={"main": profile}), profile, backend=backend,
        history_path=tmp_path / "history.sqlite3", clock=lambda: 100.0,
        tools=CommandLineTools(functions=(FUNCTIONS,)),
    )  # fmt: skip


async def asked(pilot: Pilot[Any]) -> None:
    app = pilot.app
    assert isinstance(app, ChatApp)
    while app.chat.session.tools is None:
        await pilot.pause(0.01)
    await send(pilot, "What is 2 + 3?")
    while not (isinstance(app.screen, ToolApprovalDialog) and app.screen.query("#tool-once")):
        await pilot.pause(0.01)
    await pilot.pause()


def test_the_approval_dialog(snap_compare: SnapCompare, tmp_path: Path) -> None:
    assert snap_compare(make_app(tmp_path), terminal_size=SIZE, run_before=asked)


def test_an_answer_with_its_tool_call(snap_compare: SnapCompare, tmp_path: Path) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await asked(pilot)
        await pilot.press("y")
        app = pilot.app
        assert isinstance(app, ChatApp)
        while app.chat.generating:
            await pilot.pause(0.01)
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()

    assert snap_compare(make_app(tmp_path), terminal_size=SIZE, run_before=run_before)
