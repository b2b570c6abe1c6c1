"""The chat while another process holds the history's write lock (issue 10): the prompt
is answered at once, a toast says the history is busy, and when the lock is free the
prompt and the answer are saved in order."""

from __future__ import annotations

from pathlib import Path

from tests.history.test_busy import Locker
from tests.tui.fakes import ScriptedBackend, answer, until
from tests.tui.test_chat import SIZE, make_app, send
from tests.tui.test_markup_safety import _flat
from tokentide.history.store import HistoryStore
from tokentide.tui.widgets.messages import AssistantMessage


async def test_a_locked_history_keeps_the_chat_going_and_saves_everything_later(
    db: Path,
) -> None:
    app = make_app(db, ScriptedBackend(answer("Kept in memory.")))
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await pilot.pause()
        locker = Locker(db)
        try:
            await send(pilot, "written while locked")
            await until(pilot, lambda: "History busy" in _flat(app))
            await until(
                pilot,
                lambda: any(m.source == "Kept in memory." for m in app.query(AssistantMessage)),
            )
            assert app.store is not None and app.store.pending > 0
        finally:
            locker.release()
        await until(pilot, lambda: "Everything that waited is saved now" in _flat(app))
        assert app.store.pending == 0
    with HistoryStore.open(db) as store:
        (summary,) = store.list_conversations()
        messages = store.load(summary.id).messages
    assert [(m.role, m.content, m.status) for m in messages] == [
        ("user", "written while locked", "complete"),
        ("assistant", "Kept in memory.", "complete"),
    ]
