"""An idle chat runs no periodic timers (issue 17 item 4): the status line's clocks run
only while a request is active, the "new text" badge follows scrolling instead of
polling, the history checkpoint ticks only while an answer is recorded or writes wait,
and the composer's cursor blinks while you type, then rests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.timer import Timer

from tests.tui.fakes import ScriptedBackend, answer, until
from tokentide.config.model import Profile, Settings
from tokentide.tui.app import ChatApp
from tokentide.tui.widgets.composer import Composer

SIZE = (100, 30)


def running_intervals(app: ChatApp) -> list[str]:
    """Names of the repeating timers that are not paused, in the whole app."""
    pumps: list[Any] = [app, *app.screen_stack]
    for screen in app.screen_stack:
        pumps.extend(screen.walk_children())
    found = []
    for pump in pumps:
        timers: Any = getattr(pump, "_timers", ())
        for timer in list(timers):
            assert isinstance(timer, Timer)
            state: Any = timer  # Textual types _active (a cached_property) as Never
            task = state._task  # None until it starts
            if state._repeat is None and state._active.is_set() and task and not task.done():
                found.append(f"{type(pump).__name__}:{timer.name}:{timer._interval}")
    return found


async def test_nothing_ticks_once_the_chat_is_idle_and_the_cursor_rests(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Composer, "BLINK_FOR", 0.2)
    prof = Profile(name="main", api="openai", url="http://scripted.test/v1", model="m")
    backend = ScriptedBackend(answer("one two three"), pause_before=1)
    app = ChatApp(
        Settings(profiles={"main": prof}, default="main"),
        prof,
        history_path=tmp_path / "h.sqlite3",
        backend=backend,
    )
    async with app.run_test(size=SIZE) as pilot:
        composer = app.query_one(Composer)
        await until(pilot, lambda: not composer.cursor_blink)
        assert running_intervals(app) == []
        composer.focus()
        composer.set_prompt("go")
        await pilot.press("enter")
        await backend.paused.wait()
        busy = running_intervals(app)
        # while the answer is awaited: the status clock, the badge, the checkpoint
        assert any("StatusLine" in name for name in busy), busy
        assert any(":0.5" in name and "ChatScreen" in name for name in busy), busy
        backend.resume.set()
        await until(pilot, lambda: not app.chat.generating)
        await until(pilot, lambda: not composer.cursor_blink)
        assert running_intervals(app) == []
        await pilot.press("x")  # typing wakes the cursor
        assert composer.cursor_blink
