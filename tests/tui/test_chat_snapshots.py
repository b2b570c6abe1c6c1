"""Snapshot tests of the chat app's main states (the look, not the behaviour).

Timings are frozen (the generations run on a constant clock), so the status line and
the answers' footers are the same on every run.  Regenerate with ``--snapshot-update``
and review the SVGs before committing."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any, Protocol

import pytest
from textual.app import App
from textual.pilot import Pilot

from tests.tui.fakes import ScriptedBackend, answer
from tokentide.backends.events import Event, Finish, TextDelta
from tokentide.config.model import Profile, Settings
from tokentide.errors import BackendError, HTTPStatusError
from tokentide.tui.app import ChatApp
from tokentide.tui.widgets.composer import Composer

SIZE = (100, 30)

MARKDOWN = """\
## Plan

1. Read the **config** file
2. Open the `history` store

| key | meaning |
|-----|---------|
| Esc | stop    |

```python
def hello() -> str:
    return "hi"
```
"""


class SnapCompare(Protocol):
    def __call__(
        self,
        app: str | Path | App[Any],
        press: Iterable[str] = (),
        terminal_size: tuple[int, int] = (80, 24),
        run_before: Callable[[Pilot[Any]], Awaitable[None] | None] | None = None,
    ) -> bool: ...


@pytest.fixture(autouse=True)
def steady_cursor(monkeypatch: pytest.MonkeyPatch) -> None:
    """The composer's cursor never blinks here: on a loaded machine a screenshot taken
    more than half a second after the last key caught it in its dark phase."""
    monkeypatch.setattr(Composer, "BLINK_FOR", 0)


def make_app(tmp_path: Path, backend: ScriptedBackend) -> ChatApp:
    profile = Profile(name="main", api="openai", url="http://scripted.test/v1", model="tiny-model")
    settings = Settings(profiles={"main": profile})
    return ChatApp(
        settings,
        profile,
        backend=backend,
        history_path=tmp_path / "history.sqlite3",
        clock=lambda: 100.0,
    )


async def steady(pilot: Pilot[Any]) -> None:
    """Let AUTO_FOCUS land on the composer, and stop its cursor blinking (a blink
    phase is not part of the look)."""
    await pilot.pause()
    pilot.app.query_one(Composer).cursor_blink = False


async def send(pilot: Pilot[Any], text: str) -> None:
    await steady(pilot)
    pilot.app.query_one(Composer).set_prompt(text)
    await pilot.press("enter")


def test_empty(snap_compare: SnapCompare, tmp_path: Path) -> None:
    app = make_app(tmp_path, ScriptedBackend())
    assert snap_compare(app, terminal_size=SIZE, run_before=steady)


def test_streaming(snap_compare: SnapCompare, tmp_path: Path) -> None:
    script: list[Event | BackendError] = [
        TextDelta("## Streaming\n\nThe first"),
        TextDelta(" paragraph is"),
        TextDelta(" arriving"),
        Finish("stop"),
    ]
    backend = ScriptedBackend(script, pause_before=3)

    async def run_before(pilot: Pilot[Any]) -> None:
        await send(pilot, "Tell me something")
        await backend.paused.wait()
        await pilot.pause(0.1)

    assert snap_compare(make_app(tmp_path, backend), terminal_size=SIZE, run_before=run_before)
    backend.resume.set()


def test_finished_markdown(snap_compare: SnapCompare, tmp_path: Path) -> None:
    backend = ScriptedBackend([TextDelta(MARKDOWN), Finish("stop")])

    async def run_before(pilot: Pilot[Any]) -> None:
        await send(pilot, "What is the plan?")
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()

    assert snap_compare(make_app(tmp_path, backend), terminal_size=SIZE, run_before=run_before)


def test_stopped(snap_compare: SnapCompare, tmp_path: Path) -> None:
    backend = ScriptedBackend(answer("This answer is cut short here"), pause_before=4)

    async def run_before(pilot: Pilot[Any]) -> None:
        await send(pilot, "Go on")
        await backend.paused.wait()
        await pilot.pause()
        await pilot.press("escape")
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()

    assert snap_compare(make_app(tmp_path, backend), terminal_size=SIZE, run_before=run_before)


def test_error(snap_compare: SnapCompare, tmp_path: Path) -> None:
    error = HTTPStatusError(
        "The server answered 500 Internal Server Error.",
        status=500,
        server="http://127.0.0.1:8000/v1",
        hint="The server failed; its log says why.",
    )
    backend = ScriptedBackend([error])

    async def run_before(pilot: Pilot[Any]) -> None:
        await send(pilot, "Hello?")
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()

    assert snap_compare(make_app(tmp_path, backend), terminal_size=SIZE, run_before=run_before)


def test_sidebar_open(snap_compare: SnapCompare, tmp_path: Path) -> None:
    backend = ScriptedBackend(answer("First answer."), answer("Second answer."))

    async def run_before(pilot: Pilot[Any]) -> None:
        await send(pilot, "How do I bake bread?")
        await pilot.app.workers.wait_for_complete()
        await pilot.press("ctrl+n")
        await send(pilot, "What is a monad?")
        await pilot.app.workers.wait_for_complete()
        await pilot.press("ctrl+b")
        await pilot.pause()

    assert snap_compare(make_app(tmp_path, backend), terminal_size=SIZE, run_before=run_before)
