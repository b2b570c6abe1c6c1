"""The end of an answer (issue 17 item 1): its last tokens are painted before the
end-of-answer work (saving, status line, sidebar, unfolding, garbage collection) runs.
An order of events, not a timing: the screen's compositor rendering the line with the
final token is recorded, and so is the answer being saved."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.tui.fakes import ScriptedBackend, until
from tokentide.backends.events import Finish, TextDelta
from tokentide.config.model import Profile, Settings
from tokentide.history.store import HistoryStore
from tokentide.tui.app import ChatApp
from tokentide.tui.widgets.composer import Composer
from tokentide.tui.widgets.markdown_view import MarkdownMessage

SIZE = (100, 30)
FINAL = "ZQXFINALWORD"


async def test_the_final_token_is_painted_before_the_answer_is_saved_and_the_status_updated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[str] = []
    render_line = MarkdownMessage.render_line

    def rendering(self: MarkdownMessage, y: int) -> Any:
        strip = render_line(self, y)
        if FINAL in strip.text and "painted" not in events:
            events.append("painted")
        return strip

    finish_answer = HistoryStore.finish_answer

    def saving(self: HistoryStore, *args: Any, **kwargs: Any) -> None:
        events.append("saved")
        finish_answer(self, *args, **kwargs)

    monkeypatch.setattr(MarkdownMessage, "render_line", rendering)
    monkeypatch.setattr(HistoryStore, "finish_answer", saving)
    words = [TextDelta(f" word{i}") for i in range(200)]
    backend = ScriptedBackend([*words, TextDelta(f" {FINAL}"), Finish("stop")])
    prof = Profile(name="main", api="openai", url="http://scripted.test/v1", model="m")
    app = ChatApp(
        Settings(profiles={"main": prof}, default="main"),
        prof,
        history_path=tmp_path / "h.sqlite3",
        backend=backend,
    )
    async with app.run_test(size=SIZE) as pilot:
        status = app.chat.status
        original = status.show_use

        def status_updated(tail: str) -> None:
            events.append("status")
            original(tail)

        monkeypatch.setattr(status, "show_use", status_updated)
        composer = app.query_one(Composer)
        composer.focus()
        composer.set_prompt("go")
        await pilot.press("enter")
        await until(pilot, lambda: not app.chat.generating)
    assert events[:3] == ["painted", "saved", "status"], events
