"""Pilot tests of conversations as trees in the app: regenerate and edit make versions
(‹ n/m ›), alt+left/right move between them and the next request carries the branch on
screen, any prompt can be edited (e), an answer continued (alt+c), a conversation's
settings edited (F3), forked, a version deleted, a conversation exported and copied."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from textual.pilot import Pilot
from textual.widgets import Input

from tests.tui.fakes import ScriptedBackend, answer, until
from tests.tui.test_chat import SIZE, make_app, send
from tokentide.backends.events import Event, Finish, TextDelta
from tokentide.errors import BackendError
from tokentide.history.settings import ConversationSettings
from tokentide.history.store import HistoryStore
from tokentide.tui.app import ChatApp
from tokentide.tui.widgets.composer import Composer
from tokentide.tui.widgets.messages import AssistantMessage, UserMessage


class Continuing(ScriptedBackend):
    continues_answers = True


def prompts(app: ChatApp) -> list[str]:
    return [w.source for w in app.query(UserMessage)]


def answers(app: ChatApp) -> list[str]:
    return [w.source for w in app.query(AssistantMessage)]


def titles(app: ChatApp) -> list[str]:
    return [str(w.border_title) for w in app.query(AssistantMessage)]


def carried(backend: ScriptedBackend, index: int = -1) -> list[tuple[str, str]]:
    return [(m.role, m.content) for m in backend.requests[index].messages]


async def settle(app: ChatApp, pilot: Pilot[Any]) -> None:
    await app.workers.wait_for_complete()
    await until(pilot, lambda: not app.chat.generating)
    await pilot.pause()


async def test_regenerate_makes_a_version_and_alt_arrows_move_between_them(db: Path) -> None:
    backend = ScriptedBackend(answer("First try."), answer("Second try."), answer("After one."))
    app = make_app(db, backend)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await send(pilot, "q")
        await settle(app, pilot)
        assert "‹" not in titles(app)[0]
        await pilot.press("ctrl+r")
        await settle(app, pilot)
        assert answers(app) == ["Second try."]
        assert titles(app)[0].endswith("‹ 2/2 ›")

        await pilot.press("alt+left")
        await pilot.pause()
        assert answers(app) == ["First try."] and titles(app)[0].endswith("‹ 1/2 ›")
        await pilot.press("alt+left")  # no version before the first
        await pilot.pause()
        assert answers(app) == ["First try."]

        await send(pilot, "go on")  # follows the branch on screen
        await settle(app, pilot)
        assert carried(backend) == [("user", "q"), ("assistant", "First try."), ("user", "go on")]
        conversation = app.chat.conversation_id

    # Reopened: the branch last on screen, with its versions.
    again = make_app(db, ScriptedBackend(), conversation_id=conversation)
    async with again.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: again.chat.history_painted.is_set())
        await pilot.pause()
        assert answers(again) == ["First try.", "After one."]
        assert titles(again)[0].endswith("‹ 1/2 ›")
        await pilot.press("alt+right")  # the last message with versions: the first answer
        await pilot.pause()
        assert answers(again) == ["Second try."]
        assert prompts(again) == ["q"]


async def test_any_prompt_can_be_edited_into_a_new_version(db: Path) -> None:
    backend = ScriptedBackend(answer("A."), answer("B."), answer("C."))
    app = make_app(db, backend)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await send(pilot, "one")
        await settle(app, pilot)
        await send(pilot, "two")
        await settle(app, pilot)

        app.query(UserMessage).first().focus()
        await pilot.press("e")
        await pilot.pause()
        composer = app.query_one(Composer)
        assert composer.text == "one" and app.focused is composer
        assert "editing" in str(composer.border_title)
        assert prompts(app) == [] and answers(app) == []  # the rest waits off screen

        await pilot.press("escape")  # cancelled: everything comes back
        await pilot.pause()
        assert prompts(app) == ["one", "two"] and composer.text == ""

        app.query(UserMessage).first().focus()
        await pilot.press("e")
        await pilot.pause()
        composer.set_prompt("one, edited")
        await pilot.press("enter")
        await settle(app, pilot)
        assert carried(backend) == [("user", "one, edited")]
        assert prompts(app) == ["one, edited"] and answers(app) == ["C."]
        assert app.query_one(UserMessage).render().plain.endswith("‹ 2/2 ›")  # type: ignore[union-attr]

        app.query_one(UserMessage).focus()
        await pilot.press("alt+left")
        await pilot.pause()
        assert prompts(app) == ["one", "two"] and answers(app) == ["A.", "B."]
        focused: object = app.focused
        assert focused is app.query(UserMessage).first()  # focus stays on the message


async def test_continue_appends_to_a_stopped_answer(db: Path) -> None:
    first: list[Event | BackendError] = [TextDelta("1, 2,"), TextDelta(" never")]
    backend = Continuing(first, [TextDelta(" 3, 4."), Finish("stop")], pause_before=1)
    app = make_app(db, backend)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await send(pilot, "count")
        await backend.paused.wait()
        await pilot.press("escape")
        backend.resume.set()
        await settle(app, pilot)
        assert answers(app) == ["1, 2,"]
        backend.pause_before = None
        await pilot.press("alt+c")
        await settle(app, pilot)
        assert answers(app) == ["1, 2, 3, 4."]
        assert carried(backend) == [("user", "count"), ("assistant", "1, 2,")]
        assert titles(app)[0].endswith("‹ 2/2 ›")  # the stopped one is kept as a version


async def test_continue_says_so_where_the_backend_cannot(db: Path) -> None:
    app = make_app(db, ScriptedBackend(answer("cut short", reason="length")))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await send(pilot, "q")
        await settle(app, pilot)
        await pilot.press("alt+c")
        await pilot.pause()
        assert answers(app) == ["cut short"]
        assert any("cannot continue" in str(n.message) for n in app._notifications)


async def test_settings_dialog_changes_the_next_request_and_is_saved(db: Path) -> None:
    backend = ScriptedBackend(answer("ok"), answer("ok again"))
    app = make_app(db, backend)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await send(pilot, "q")
        await settle(app, pilot)
        await pilot.press("f3")
        await until(pilot, lambda: app.screen.__class__.__name__ == "ConversationSettingsDialog")
        app.screen.query_one("#temperature", Input).value = "0.25"
        app.screen.query_one("#seed", Input).value = "5"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: app.screen is app.chat)
        await send(pilot, "again")
        await settle(app, pilot)
        request = backend.requests[-1]
        assert (request.temperature, request.seed) == (0.25, 5)
        conversation = app.chat.conversation_id
    assert conversation is not None
    store = HistoryStore.open(db)
    try:
        assert store.settings(conversation) == ConversationSettings(temperature=0.25, seed=5)
    finally:
        store.close()


async def test_fork_and_delete_a_version_from_the_palette_commands(db: Path) -> None:
    backend = ScriptedBackend(answer("a"), answer("b"), answer("c"))
    app = make_app(db, backend)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await send(pilot, "q1")
        await settle(app, pilot)
        await send(pilot, "q2")
        await settle(app, pilot)
        original = app.chat.conversation_id
        app.query(AssistantMessage).first().focus()
        await pilot.pause()
        app.chat.commands.fork()
        await settle(app, pilot)
        await until(pilot, lambda: app.chat.conversation_id != original)
        await until(pilot, lambda: app.chat.history_painted.is_set())
        assert prompts(app) == ["q1"], (
            prompts(app),
            answers(app),
            [t.content for t in app.chat.turns],
        )
        assert answers(app) == ["a"]

        await pilot.press("ctrl+r")  # a second version in the fork
        await settle(app, pilot)
        assert answers(app) == ["c"]
        app.chat.commands.delete_version()
        await pilot.pause()
        await pilot.press("y")
        await settle(app, pilot)
        assert answers(app) == ["a"]
        assert "‹" not in titles(app)[0]
    store = HistoryStore.open(db)
    try:
        assert original is not None
        assert [m.content for m in store.load(original).messages] == ["q1", "a", "q2", "b"]
    finally:
        store.close()


async def test_export_writes_markdown_or_every_branch_as_json(db: Path, tmp_path: Path) -> None:
    backend = ScriptedBackend(answer("one"), answer("two"))
    app = make_app(db, backend)
    target = tmp_path / "out" / "chat.json"
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await send(pilot, "q")
        await settle(app, pilot)
        await pilot.press("ctrl+r")
        await settle(app, pilot)
        app.chat.exports.export()
        await until(pilot, lambda: bool(app.screen.query("#dialog-input")))
        field = app.screen.query_one("#dialog-input", Input)
        assert field.value.endswith(".md")  # the default, under the data directory
        field.value = str(target)
        await pilot.press("enter")
        await settle(app, pilot)
        await until(pilot, lambda: target.exists())
        app.chat.exports.copy_conversation()
        await pilot.pause()
        copied = app.clipboard or ""
        assert "two" in copied and "\none\n" not in copied  # the branch on screen only
    exported = json.loads(target.read_text())
    assert sorted(m["content"] for m in exported["messages"]) == ["one", "q", "two"]


async def test_a_long_conversation_mounts_its_last_messages_and_more_on_scrolling_up(
    db: Path,
) -> None:
    from tokentide.tui.branch_view import HISTORY_WINDOW, EarlierMessages

    store = HistoryStore.open(db)
    cid = store.create_conversation(title="long")
    for i in range(60):
        store.add_message(cid, "user", f"question {i}")
        recorder = store.record_answer(cid, model="m")
        recorder.finish("complete", text=f"answer {i}\n\nwith a second paragraph")
    store.close()
    backend = ScriptedBackend(answer("fresh"))
    app = make_app(db, backend, conversation_id=cid)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.chat.history_painted.is_set())
        await until(pilot, lambda: bool(app.query(EarlierMessages)))
        await pilot.pause()
        assert len(app.query(UserMessage)) + len(app.query(AssistantMessage)) == HISTORY_WINDOW
        assert prompts(app)[-1] == "question 59"
        line = app.query_one(EarlierMessages)
        assert f"{120 - HISTORY_WINDOW} earlier messages" in str(line.render())
        # The request carries the whole branch, mounted or not.
        await send(pilot, "next")
        await settle(app, pilot)
        assert len(backend.requests[-1].messages) == 121
        # Scrolled to the top: older messages come, the view stays where it was.
        view = app.chat.view
        view.scroll_home(animate=False, immediate=True)
        before = len(prompts(app))
        await until(pilot, lambda: len(prompts(app)) > before)
        await until(pilot, lambda: view.scroll_y > 0)  # kept its place, not at the top
        for _ in range(20):
            if prompts(app)[0] == "question 0":
                break
            count = len(prompts(app))
            view.scroll_home(animate=False, immediate=True)
            await until(pilot, lambda: len(prompts(app)) > count)  # noqa: B023
            await until(pilot, lambda: view.scroll_y > 0)  # its place kept once more
        assert prompts(app)[0] == "question 0"
        await until(pilot, lambda: not app.query(EarlierMessages))
        assert len(prompts(app)) == 61
