"""Pilot tests of the chat app: the real app, the real Generation, the real history store;
a scripted backend for pure-UI behaviour and the loopback LLM server wherever the
network matters (stop, disconnect, retry countdown)."""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path
from typing import Any

import pytest
from textual.events import Paste
from textual.pilot import Pilot
from textual.widgets import Static

from tests.servers.llm_server import LLMServer
from tests.tui.fakes import ScriptedBackend, answer, until
from tokentide.backends.events import Event, Finish, TextDelta
from tokentide.config.model import Profile, Settings
from tokentide.errors import BackendError, CannotConnect
from tokentide.history.store import HistoryStore
from tokentide.tui.app import ChatApp
from tokentide.tui.chat_screen import ChatScreen
from tokentide.tui.widgets.composer import PASTE_INLINE_CHARS, Composer
from tokentide.tui.widgets.messages import AssistantMessage, ErrorMessage, UserMessage

SIZE = (100, 30)


def profile(url: str = "http://scripted.test/v1", **fields: Any) -> Profile:
    values: dict[str, Any] = {"name": "main", "api": "openai", "url": url, "model": "m"}
    values.update(fields)
    return Profile(**values)


def make_app(
    db: Path,
    backend: Any = None,
    *,
    prof: Profile | None = None,
    settings: Settings | None = None,
    **kwargs: Any,
) -> ChatApp:
    prof = prof or profile()
    settings = settings or Settings(profiles={prof.name: prof}, default=prof.name)
    return ChatApp(settings, prof, history_path=db, backend=backend, **kwargs)


def chat(app: ChatApp) -> ChatScreen:
    return app.chat


async def send(pilot: Pilot[Any], text: str) -> None:
    composer = pilot.app.query_one(Composer)
    composer.focus()
    composer.set_prompt(text)
    await pilot.press("enter")


def shown(widget: Any) -> bool:
    return bool(widget.display)


def saved(db: Path, conversation_id: str | None) -> list[tuple[str, str, str | None]]:
    assert conversation_id is not None
    store = HistoryStore.open(db)
    try:
        conversation = store.load(conversation_id)
        return [(m.role, m.content, m.status) for m in conversation.messages]
    finally:
        store.close()


# -- send and stream ----------------------------------------------------------------------


async def test_send_streams_the_answer_and_saves_both_messages(db: Path) -> None:
    backend = ScriptedBackend(answer("Hello **there**, friend."))
    app = make_app(db, backend, prof=profile(system="Be brief."))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press(*"hi", "enter")
        await app.workers.wait_for_complete()
        await pilot.pause()

        answer_widget = app.query_one(AssistantMessage)
        assert answer_widget.source == "Hello **there**, friend."
        assert not answer_widget.has_class("-streaming")
        assert [w.source for w in app.query(UserMessage)] == ["hi"]
        assert app.query_one(Composer).text == ""
        assert app.focused is app.query_one(Composer)
        status = str(app.chat.status.render())
        assert status.startswith("done (stop)") and "3 chunks" in status
        request = backend.requests[0]
        assert [(m.role, m.content) for m in request.messages] == [
            ("system", "Be brief."),
            ("user", "hi"),
        ]
        conversation = chat(app).conversation_id
    assert saved(db, conversation) == [
        ("user", "hi", "complete"),
        ("assistant", "Hello **there**, friend.", "complete"),
    ]


async def test_each_request_carries_the_conversation_so_far(db: Path) -> None:
    backend = ScriptedBackend(answer("One."), answer("Two."))
    app = make_app(db, backend, prof=profile(system="sys"))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        for prompt in ("first", "second"):
            await send(pilot, prompt)
            await app.workers.wait_for_complete()
        await pilot.pause()
    assert [(m.role, m.content) for m in backend.requests[1].messages] == [
        ("system", "sys"),
        ("user", "first"),
        ("assistant", "One."),
        ("user", "second"),
    ]


async def test_a_prompt_sent_while_answering_is_refused_and_kept(db: Path) -> None:
    backend = ScriptedBackend(answer("slow answer"), pause_before=1)
    app = make_app(db, backend)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await send(pilot, "first")
        await backend.paused.wait()
        await send(pilot, "second")
        await pilot.pause()
        assert app.query_one(Composer).text == "second"
        assert len(backend.requests) == 1
        backend.resume.set()
        await app.workers.wait_for_complete()


# -- stop ---------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["escape", "ctrl+c"])
async def test_escape_stops_a_stalled_server_and_keeps_the_partial_answer(
    db: Path, server: LLMServer, key: str
) -> None:
    """Esc, and ctrl+c as in every terminal chat (issue 11), stop the answer."""
    tag = f"stall-{key}"
    prof = profile(server.url(tokens=50, stall_at=3, tag=tag) + "/v1")
    app = make_app(db, prof=prof)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await send(pilot, "go")
        await until(
            pilot,
            lambda: app.query(AssistantMessage) and "w2" in app.query_one(AssistantMessage).source,
        )
        record = server.record(tag)
        assert record.disconnected_at is None

        pressed = time.monotonic()
        await pilot.press(key)
        assert app.focused is app.query_one(Composer)  # at once, before the answer ends
        disconnected = await server.wait_disconnect(record)
        await app.workers.wait_for_complete()
        await pilot.pause()

        # The server stalls until the client goes away, so any disconnect at all proves
        # the stop reached it; the bound only says "promptly", with room for a loaded CI.
        assert disconnected - pressed < 2.0, (
            f"server saw the stop after {disconnected - pressed:.3f} s"
        )
        message = app.query_one(AssistantMessage)
        assert message.source == "w0 w1 w2"
        assert message.has_class("-stopped")
        assert "stopped" in str(message.border_subtitle)
        assert str(app.chat.status.render()).startswith("stopped")
        assert not app.chat.generating
        conversation = chat(app).conversation_id
    assert saved(db, conversation) == [
        ("user", "go", "complete"),
        ("assistant", "w0 w1 w2", "stopped"),
    ]


async def test_ctrl_c_with_nothing_streaming_copies_a_selection_or_says_how_to_quit(
    db: Path,
) -> None:
    app = make_app(db, ScriptedBackend(answer("ok")))
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        composer = app.query_one(Composer)
        composer.focus()
        composer.set_prompt("copy me please")
        composer.select_all()
        await pilot.press("ctrl+c")
        await until(pilot, lambda: app.clipboard == "copy me please")
        assert composer.text == "copy me please"  # nothing sent, nothing cut
        composer.selection = composer.selection.cursor(composer.selection.end)
        await pilot.press("ctrl+c")
        await until(
            pilot, lambda: any("to quit the app" in str(n.message) for n in app._notifications)
        )
        assert app.is_running
        (hint,) = [n for n in app._notifications if "to quit" in str(n.message)]
        assert hint.message == "Press ctrl+q to quit the app"  # plain text, no [b] markup


async def test_escape_interrupts_a_retry_countdown(db: Path, server: LLMServer) -> None:
    prof = profile(server.url(status=503, retry_after=30, tag="busy") + "/v1", max_retries=2)
    app = make_app(db, prof=prof)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await send(pilot, "go")
        await until(pilot, lambda: "retrying in" in str(app.chat.status.render()))
        assert "attempt 2" in str(app.chat.status.render())
        started = time.monotonic()
        await pilot.press("escape")
        await app.workers.wait_for_complete()
        assert time.monotonic() - started < 10.0  # not the 30 s the server asked for
        await pilot.pause()
        assert str(app.chat.status.render()).startswith("stopped")
        assert len([r for r in server.records if r.tag == "busy"]) == 1


async def test_quitting_mid_answer_saves_the_partial_answer(db: Path, server: LLMServer) -> None:
    prof = profile(server.url(tokens=50, stall_at=2, tag="quit") + "/v1")
    app = make_app(db, prof=prof)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await send(pilot, "go")
        await until(
            pilot,
            lambda: app.query(AssistantMessage) and "w1" in app.query_one(AssistantMessage).source,
        )
        conversation = chat(app).conversation_id
        await app.action_quit()
    await server.wait_disconnect(server.record("quit"))
    assert saved(db, conversation)[-1] == ("assistant", "w0 w1", "stopped")


async def test_quitting_before_the_first_token_keeps_the_prompt_only(
    db: Path, server: LLMServer
) -> None:
    """Issue 11: an early quit saved an empty "stopped" answer that every reopening
    showed; the prompt is what the user wrote, so only it is kept."""
    prof = profile(server.url(tokens=50, stall_at=0, tag="quit-early") + "/v1")
    app = make_app(db, prof=prof)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await send(pilot, "go")
        record = await server.wait_responding("quit-early")
        conversation = chat(app).conversation_id
        await app.action_quit()
    await server.wait_disconnect(record)
    assert saved(db, conversation) == [("user", "go", "complete")]


# -- errors and retry ---------------------------------------------------------------------


async def test_an_error_is_shown_the_prompt_restored_and_ctrl_r_retries(db: Path) -> None:
    failure: list[Event | BackendError] = [
        CannotConnect(
            "Nothing answered at http://x/v1.\x1b]52;c;ZXZpbA==\x07",
            server="http://x/v1",
            hint="Is the server running?",
        )
    ]
    backend = ScriptedBackend(failure, answer("Recovered."))
    app = make_app(db, backend, prof=profile(max_retries=0))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await send(pilot, "please answer")
        await app.workers.wait_for_complete()
        await pilot.pause()

        error = app.query_one(ErrorMessage)
        shown = str(error.render())
        assert "Nothing answered at http://x/v1." in shown
        assert "server: http://x/v1" in shown and "Is the server running?" in shown
        assert "\x1b" not in shown and "52;" not in shown
        assert not app.query(AssistantMessage)
        assert app.query_one(Composer).text == "please answer"
        assert str(app.chat.status.render()).startswith("error")

        await pilot.press("ctrl+r")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert not app.query(ErrorMessage)
        assert app.query_one(Composer).text == ""
        assert app.query_one(AssistantMessage).source == "Recovered."
        assert [w.source for w in app.query(UserMessage)] == ["please answer"]
        assert [(m.role, m.content) for m in backend.requests[1].messages] == [
            ("user", "please answer")
        ]
        conversation = chat(app).conversation_id
    rows = saved(db, conversation)
    assert [r for r in rows if r[0] == "user"] == [("user", "please answer", "complete")]
    assert rows[-1] == ("assistant", "Recovered.", "complete")


async def test_an_error_does_not_overwrite_what_the_user_typed_since(db: Path) -> None:
    backend = ScriptedBackend(
        [TextDelta("part"), CannotConnect("dropped", server="s")], pause_before=1
    )
    app = make_app(db, backend, prof=profile(max_retries=0))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await send(pilot, "first")
        await backend.paused.wait()
        app.query_one(Composer).set_prompt("typing something else")
        backend.resume.set()
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.query_one(Composer).text == "typing something else"
        assert app.query_one(AssistantMessage).source == "part"
        assert app.query_one(ErrorMessage)


async def test_a_server_error_names_the_server(db: Path, server: LLMServer) -> None:
    prof = profile(server.url(status=500, tag="e500") + "/v1", max_retries=0)
    app = make_app(db, prof=prof)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await send(pilot, "go")
        await app.workers.wait_for_complete()
        await pilot.pause()
        shown = str(app.query_one(ErrorMessage).render())
        assert "500" in shown and "127.0.0.1" in shown


# -- regenerate, edit ---------------------------------------------------------------------


async def test_regenerate_replaces_the_last_answer(db: Path) -> None:
    backend = ScriptedBackend(answer("First try."), answer("Second try."))
    app = make_app(db, backend)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await send(pilot, "q")
        await app.workers.wait_for_complete()
        await pilot.press("ctrl+r")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert [w.source for w in app.query(AssistantMessage)] == ["Second try."]
        assert [(m.role, m.content) for m in backend.requests[1].messages] == [("user", "q")]
        conversation = chat(app).conversation_id
    assert saved(db, conversation) == [
        ("user", "q", "complete"),
        ("assistant", "Second try.", "complete"),
    ]


async def test_edit_last_takes_the_prompt_back_and_resends(db: Path) -> None:
    backend = ScriptedBackend(answer("A."), answer("B."), answer("C."))
    app = make_app(db, backend)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await send(pilot, "one")
        await app.workers.wait_for_complete()
        await send(pilot, "two")
        await app.workers.wait_for_complete()
        await pilot.press("ctrl+l")
        await pilot.pause()
        composer = app.query_one(Composer)
        assert composer.text == "two"
        assert [w.source for w in app.query(UserMessage)] == ["one"]
        composer.set_prompt("two, edited")
        await pilot.press("enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert [(m.role, m.content) for m in backend.requests[-1].messages] == [
            ("user", "one"),
            ("assistant", "A."),
            ("user", "two, edited"),
        ]
        conversation = chat(app).conversation_id
    assert saved(db, conversation) == [
        ("user", "one", "complete"),
        ("assistant", "A.", "complete"),
        ("user", "two, edited", "complete"),
        ("assistant", "C.", "complete"),
    ]


async def test_regenerate_after_an_earlier_failed_answer_keeps_the_right_rows(db: Path) -> None:
    """A failed answer with no text is a stored row but not a turn of the conversation:
    regenerating must delete by row, not by turn position, or the prompt is lost."""
    failure: list[Event | BackendError] = [CannotConnect("down", server="s")]
    backend = ScriptedBackend(failure, answer("B."), answer("C."))
    app = make_app(db, backend, prof=profile(max_retries=0))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await send(pilot, "one")
        await app.workers.wait_for_complete()
        await pilot.pause()
        app.query_one(Composer).clear_prompt()
        await send(pilot, "two")
        await app.workers.wait_for_complete()
        await pilot.press("ctrl+r")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert [w.source for w in app.query(AssistantMessage)] == ["C."]
        conversation = chat(app).conversation_id
    rows = saved(db, conversation)
    assert [(role, content) for role, content, _ in rows] == [
        ("user", "one"),
        ("assistant", ""),
        ("user", "two"),
        ("assistant", "C."),
    ]
    assert rows[1][2] == "error"


# -- conversations ------------------------------------------------------------------------


async def test_a_conversation_survives_a_restart(db: Path) -> None:
    app = make_app(db, ScriptedBackend(answer("Saved answer.")))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await send(pilot, "remember me")
        await app.workers.wait_for_complete()
        conversation = chat(app).conversation_id

    backend = ScriptedBackend(answer("Next."))
    again = make_app(db, backend, continue_last=True)
    async with again.run_test(size=SIZE) as pilot:
        await again.workers.wait_for_complete()
        await pilot.pause()
        assert chat(again).conversation_id == conversation
        assert [w.source for w in again.query(UserMessage)] == ["remember me"]
        assert [w.source for w in again.query(AssistantMessage)] == ["Saved answer."]
        await send(pilot, "and then?")
        await again.workers.wait_for_complete()
    assert [(m.role, m.content) for m in backend.requests[0].messages] == [
        ("user", "remember me"),
        ("assistant", "Saved answer."),
        ("user", "and then?"),
    ]


async def test_the_sidebar_switches_renames_and_deletes_conversations(db: Path) -> None:
    backend = ScriptedBackend(answer("Answer one."), answer("Answer two."))
    app = make_app(db, backend)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await send(pilot, "first topic")
        await app.workers.wait_for_complete()
        first = chat(app).conversation_id
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert not app.query(UserMessage)
        await send(pilot, "second topic")
        await app.workers.wait_for_complete()

        await pilot.press("ctrl+b")
        await pilot.pause()
        sidebar = chat(app).sidebar
        assert sidebar.display
        assert [item.title for item in sidebar.items] == ["second topic", "first topic"]

        await pilot.press("down", "enter")  # newest first: the second row is the first topic
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert chat(app).conversation_id == first
        assert [w.source for w in app.query(UserMessage)] == ["first topic"]
        assert [w.source for w in app.query(AssistantMessage)] == ["Answer one."]

        sidebar.query_one("#conversations").focus()
        await pilot.press("f2")
        await pilot.pause()
        await pilot.press("ctrl+u", *"Renamed", "enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert "Renamed" in [item.title for item in sidebar.items]

        await pilot.press("delete")
        await pilot.pause()
        await pilot.press("n")  # cancelled: nothing deleted
        await app.workers.wait_for_complete()
        assert len(sidebar.items) == 2
        await pilot.press("delete")
        await pilot.pause()
        await pilot.press("y")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert len(sidebar.items) == 1

        app.query_one("#conversation-search").focus()
        await pilot.press(*"zzz-nothing")
        await pilot.pause()
        assert sidebar.items == []


# -- composer -----------------------------------------------------------------------------


async def test_composer_keys_newline_and_prompt_history(db: Path) -> None:
    backend = ScriptedBackend(answer("ok"))
    app = make_app(db, backend)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press(*"line one", "ctrl+j", *"line two", "enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert backend.requests[0].messages[-1].content == "line one\nline two"
        await pilot.press(*"second", "enter")
        await app.workers.wait_for_complete()
        await pilot.pause()

        composer = app.query_one(Composer)
        await pilot.press(*"draft")
        await pilot.press("up")
        assert composer.text == "second"
        await pilot.press("up")
        assert composer.text == "line one\nline two"
        assert composer.cursor_location[0] == 0
        await pilot.press("up")  # oldest: stays
        assert composer.text == "line one\nline two"
        await pilot.press("down")  # first line -> moves the cursor, not the history
        assert composer.text == "line one\nline two"
        await pilot.press("down")
        assert composer.text == "second"
        await pilot.press("down")
        assert composer.text == "draft"


async def test_a_huge_paste_becomes_a_placeholder_and_is_sent_exactly(db: Path) -> None:
    backend = ScriptedBackend(answer("ok"))
    app = make_app(db, backend)
    huge = "\n".join(f"line {i} " + "x" * 60 for i in range(20_000))
    assert len(huge) > PASTE_INLINE_CHARS
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        composer = app.query_one(Composer)
        await pilot.press(*"see: ")
        composer.post_message(Paste(huge))  # its speed is measured in benchmarks/
        await pilot.pause()
        assert composer.text.startswith("see: [pasted text #1: 20,000 lines")
        await pilot.press("enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert backend.requests[0].messages[-1].content == "see: " + huge
        shown = str(app.query_one(UserMessage).render())
        assert "more characters" in shown and len(shown) < 30_000


# -- following the end --------------------------------------------------------------------


async def test_the_view_follows_the_end_until_the_user_scrolls_up(db: Path) -> None:
    lines = [TextDelta(f"line {i}\n\n") for i in range(200)]
    script: list[Event | BackendError] = [*lines[:100], *lines[100:], Finish("stop")]
    backend = ScriptedBackend(script, pause_before=100)
    app = make_app(db, backend)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await send(pilot, "long")
        await backend.paused.wait()
        await pilot.pause()
        view = chat(app).view
        assert view.max_scroll_y > 0
        assert view.scroll_y == view.max_scroll_y

        view.scroll_to(y=0, animate=False)  # the user scrolls up
        await pilot.pause()
        backend.resume.set()
        await app.workers.wait_for_complete()
        badge = app.query_one("#new-text")
        await until(pilot, lambda: shown(badge))
        assert view.scroll_y == 0
        assert str(badge.render()) == "↓ latest · end"  # the key, as Textual writes it

        await pilot.press("ctrl+end")
        await pilot.pause()
        assert view.scroll_y == view.max_scroll_y
        await until(pilot, lambda: not shown(badge))

        view.scroll_to(y=0, animate=False)
        await pilot.pause()
        await send(pilot, "again")  # a new prompt follows again
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert view.scroll_y == view.max_scroll_y


async def test_following_holds_under_a_fast_loopback_stream(db: Path, server: LLMServer) -> None:
    prof = profile(server.url(tokens=3000) + "/v1")
    app = make_app(db, prof=prof)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await send(pilot, "fast")
        await app.workers.wait_for_complete()
        await pilot.pause()
        view = chat(app).view
        assert app.query_one(AssistantMessage).source.endswith("w2999")
        assert view.max_scroll_y > 0 and view.scroll_y == view.max_scroll_y


# -- copy, token details, nodes, keys, themes, profiles -----------------------------------


async def test_copy_sends_sanitised_text(db: Path) -> None:
    text = "Run:\n\n```sh\necho hi\x1b]52;c;ZXZpbA==\x07\n```\n"
    backend = ScriptedBackend([TextDelta(text), Finish("stop")])
    app = make_app(db, backend)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await send(pilot, "code please")
        await app.workers.wait_for_complete()
        await pilot.press("ctrl+o")
        assert app.clipboard.startswith("Run:") and "\x1b" not in app.clipboard
        await pilot.press("alt+o")
        assert app.clipboard == "echo hi"
        app.query(UserMessage).first().focus()
        await pilot.press("ctrl+o")
        assert app.clipboard == "code please"


DETAILED: list[Event | BackendError] = [
    TextDelta("Sure", logprob=-0.01),
    TextDelta(" thing", logprob=-2.5),
    TextDelta("alpha", node_id="draft"),
    TextDelta("beta", node_id="review"),
    TextDelta(" more", node_id="draft"),
    Finish("stop"),
]
"""An answer with per-token logprobs and two nodes."""


async def test_token_details_shade_tokens_and_nodes_get_blocks(db: Path) -> None:
    app = make_app(db, ScriptedBackend(DETAILED))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await send(pilot, "x")
        await app.workers.wait_for_complete()
        await pilot.pause()
        message = app.query_one(AssistantMessage)
        assert list(message.nodes) == ["draft", "review"]
        assert message.nodes["draft"].markdown.source == "alpha more"
        assert "**draft**" in message.source and "**review**" in message.source

        await pilot.press("ctrl+t")
        await pilot.pause()
        assert message.has_class("-details")
        view = message.query_one(".tokens")
        rendered = view.render()
        assert "Sure thing" in str(rendered)
        spans = getattr(rendered, "spans", [])
        colours = {str(span.style) for span in spans}
        assert len(colours) >= 2  # different probabilities, different shades
        await pilot.press("ctrl+t")
        await pilot.pause()
        assert not message.has_class("-details")


async def test_keys_are_configurable(db: Path) -> None:
    prof = profile()
    settings = Settings(profiles={"main": prof}, keys={"send": "ctrl+s", "nonsense": "f9"})
    backend = ScriptedBackend(answer("ok"))
    app = make_app(db, backend, prof=prof, settings=settings)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press(*"a", "enter", *"b")
        assert app.query_one(Composer).text == "a\nb"
        await pilot.press("ctrl+s")
        await app.workers.wait_for_complete()
        assert backend.requests[0].messages[-1].content == "a\nb"


async def test_the_keys_named_on_screen_are_the_configured_ones_as_textual_writes_them(
    db: Path,
) -> None:
    """The first screen, the status line and an error's note name the key that works
    (the config's ``[keys]`` applied), written as the footer writes keys."""
    prof = profile(max_retries=0)
    keys = {"send": "ctrl+s", "retry": "f5,ctrl+r", "stop": "ctrl+x"}
    settings = Settings(profiles={"main": prof}, keys=keys)
    failure: list[Event | BackendError] = [CannotConnect("Nothing answered.")]
    app = make_app(db, ScriptedBackend(failure), prof=prof, settings=settings)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        screen = chat(app)
        assert [screen.key_for(k) for k in ("send", "retry", "stop", "edit_last")] == [
            "^s",
            "f5",
            "^x",
            "^l",
        ]
        assert screen.key_for("no-such-binding") == "no-such-binding"
        welcome = str(app.query_one("#welcome", Static).render())
        assert "^s sends" in welcome and "^x or ^c stops" in welcome
        assert "f5 regenerates" in welcome and "^l edits the last prompt" in welcome
        await pilot.press(*"hi", "ctrl+s")
        await app.workers.wait_for_complete()
        await until(pilot, lambda: bool(app.query(ErrorMessage)))
        assert "f5 retries" in str(app.query_one(ErrorMessage).render())
        await until(pilot, lambda: "f5 retries" in str(screen.status.render()))


async def test_the_theme_is_remembered(db: Path, data_dir: Path) -> None:
    app = make_app(db, ScriptedBackend())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        app.theme = "nord"
        await pilot.pause()
    assert json.loads((data_dir / "ui-state.json").read_text())["theme"] == "nord"
    again = make_app(db, ScriptedBackend())
    async with again.run_test(size=SIZE):
        assert again.theme == "nord"


async def test_switching_profile_closes_the_old_backend(db: Path, server: LLMServer) -> None:
    old = ScriptedBackend(answer("from old"))
    other = profile(server.url(text="from new", tag="new") + "/v1", name="other", model="m2")
    main = profile()
    settings = Settings(profiles={"main": main, "other": other})
    app = make_app(db, old, prof=main, settings=settings)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        from tokentide.tui.palette import ProfileCommands

        commands = [hit.text async for hit in ProfileCommands(app.screen).discover()]
        # The built-in embedded model is offered too, though the config names it nowhere.
        assert commands == ["Switch profile: local", "Switch profile: other"]
        chat(app).commands.switch_profile("other")
        await app.workers.wait_for_complete()
        assert old.closed
        assert "other" in str(chat(app).sub_title) and "m2" in str(chat(app).sub_title)
        await send(pilot, "hello")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.query_one(AssistantMessage).source == "from new"
        # (after the answer the app also asks GET /models once, for the context window)
        (request,) = [r for r in server.records if r.tag == "new" and r.method == "POST"]
        assert request.body["model"] == "m2"


async def test_reasoning_is_shown_while_streaming_then_summarised(db: Path) -> None:
    from tokentide.backends.events import ReasoningDelta

    script: list[Event | BackendError] = [
        ReasoningDelta("Let me think.\nThe user wants a colour.\n"),
        ReasoningDelta("Blue is a safe pick.\x1b]52;c;ZXZpbA==\x07"),
        TextDelta("Blue."),
        Finish("stop"),
    ]
    backend = ScriptedBackend(script, pause_before=2)
    app = make_app(db, backend)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await send(pilot, "a colour?")
        await backend.paused.wait()
        await pilot.pause()
        message = app.query_one(AssistantMessage)
        thinking = str(message.query_one(".reasoning").render())
        assert "Blue is a safe pick." in thinking and "The user wants a colour." in thinking
        assert "\x1b" not in thinking and "52;" not in thinking
        backend.resume.set()
        await app.workers.wait_for_complete()
        await pilot.pause()
        summary = str(message.query_one(".reasoning").render())
        assert summary.startswith("reasoned for ") and "Blue is" not in summary
        assert message.source == "Blue."  # reasoning is not part of the answer


async def test_reasoning_before_the_message_is_mounted_is_shown_once_it_is(db: Path) -> None:
    app = make_app(db, ScriptedBackend(answer("x")))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        message = AssistantMessage(streaming=True)
        message.add_reasoning("early thought")  # not mounted yet: must not raise
        await app.chat.view.mount(message)
        message.add_reasoning(" and more")
        await pilot.pause()
        assert "early thought and more" in str(message.query_one(".reasoning").render())


# -- folding far-off-screen turns during a stream -----------------------------------------


def saved_conversation(db: Path, turns: int) -> None:
    store = HistoryStore.open(db)
    try:
        conversation = store.create_conversation(profile="main")
        for k in range(turns):
            store.add_message(conversation, "user", f"question {k}")
            recorder = store.record_answer(conversation, profile="main", model="m")
            text = "\n\n".join(f"answer {k} paragraph {p}" for p in range(6))
            recorder.finish(status="complete", text=text, stats={})
    finally:
        store.close()


async def test_a_stream_folds_far_turns_without_moving_anything(db: Path) -> None:
    from tokentide.tui.chat_screen import FoldedHistory
    from tokentide.tui.widgets.markdown_view import MarkdownMessage

    saved_conversation(db, 12)
    lines = [TextDelta(f"line {i}\n\n") for i in range(40)]
    backend = ScriptedBackend([*lines, Finish("stop")], pause_before=20)
    app = make_app(db, backend, continue_last=True)
    async with app.run_test(size=SIZE) as pilot:
        await app.workers.wait_for_complete()
        markdown = list(app.query(MarkdownMessage))
        # Every answer rendered, and its true height laid out (the background renderer
        # corrects estimated heights in batches).
        await until(
            pilot,
            lambda: all(m._is_exact() and not m._height_changed() for m in markdown),
        )
        view = chat(app).view

        def laid_out() -> bool:  # every turn placed below the one before it
            ys = [child.virtual_region.y for child in view.children]
            return len(ys) == 24 and all(a < b for a, b in itertools.pairwise(ys))

        await until(pilot, laid_out)
        before = {child: child.virtual_region.y for child in view.children}

        await send(pilot, "long")
        await backend.paused.wait()
        await until(pilot, lambda: view.folded > 0)
        await pilot.pause()
        assert view.following
        spacer = view.query_one(FoldedHistory)
        hidden = [child for child in before if not child.display]
        assert len(hidden) == view.folded >= 12
        assert spacer.virtual_region.y == 0 and spacer.size.height > 0  # at the top
        for child, y in before.items():
            if child.display:  # what stays shown sits exactly where it was
                assert child.virtual_region.y == y
        assert view.scroll_y == view.max_scroll_y

        view.scroll_to(y=0, animate=False)  # the user scrolls up: everything is back
        await pilot.pause()
        assert view.folded == 0
        assert not view.query(FoldedHistory)
        assert all(child.display for child in before)
        assert {child: child.virtual_region.y for child in before} == before

        await pilot.press("ctrl+end")  # follow again: folds again
        await until(pilot, lambda: view.folded > 0)
        assert {c: c.virtual_region.y for c in before if c.display} == {
            c: y for c, y in before.items() if c.display
        }
        backend.resume.set()
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert view.folded == 0 and not view.query(FoldedHistory)  # the end unfolds
        assert app.query(AssistantMessage).last().source.endswith("line 39\n\n")
        assert {child: child.virtual_region.y for child in before} == before
        assert view.scroll_y == view.max_scroll_y


# -- what an answer holds beyond its text survives a restart ------------------------------


async def test_reasoning_token_details_and_nodes_survive_a_restart(db: Path) -> None:
    from tokentide.backends.events import ReasoningDelta
    from tokentide.tui.widgets.messages import NodeBlock

    reasoning = "Let me think.\n\x1b]52;c;ZXZpbA==\x07The user wants x.\n"
    script: list[Event | BackendError] = [
        ReasoningDelta(reasoning[:20]),
        ReasoningDelta(reasoning[20:]),
        *DETAILED,
    ]

    def checkpointed() -> object:
        import sqlite3

        file = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            return file.execute(
                "SELECT reasoning FROM messages WHERE status = 'streaming'"
            ).fetchone()
        finally:
            file.close()

    first = ScriptedBackend(script, pause_before=2)
    app = make_app(db, first)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await send(pilot, "x")
        await first.paused.wait()
        # Mid-stream, the reasoning is checkpointed like the text (a crash keeps it).
        await until(pilot, lambda: checkpointed() == (reasoning,), timeout=5)
        first.resume.set()
        await app.workers.wait_for_complete()
        await pilot.pause()
        live = app.query_one(AssistantMessage)
        live_summary = str(live.query_one(".reasoning").render())
        live_source, live_tokens = live.source, list(live.tokens)
        conversation = chat(app).conversation_id
    assert live_summary == f"reasoned for {len(reasoning):,} characters"

    backend = ScriptedBackend(answer("Next."))
    again = make_app(db, backend, continue_last=True)
    async with again.run_test(size=SIZE) as pilot:
        await again.workers.wait_for_complete()
        await pilot.pause()
        assert chat(again).conversation_id == conversation
        message = again.query_one(AssistantMessage)
        assert str(message.query_one(".reasoning").render()) == live_summary
        assert message.reasoning == reasoning  # exact in memory, never shown raw
        assert message.source == live_source  # the answer as the next request carries it
        assert message.node_order == ["draft", "review"]
        assert message.nodes["draft"].markdown.source == "alpha more"
        labels = [
            str(block.query_one(".node-label").render()) for block in message.query(NodeBlock)
        ]
        assert labels == ["draft", "review"]
        assert message.tokens == live_tokens

        await pilot.press("ctrl+t")
        await pilot.pause()
        assert message.has_class("-details")
        rendered = message.query_one(".tokens").render()
        assert "Sure thing" in str(rendered)
        assert len({str(span.style) for span in getattr(rendered, "spans", [])}) >= 2
        await pilot.press("ctrl+t")
        await pilot.pause()
        assert not message.has_class("-details")

        await send(pilot, "and then?")
        await again.workers.wait_for_complete()
    assert [(m.role, m.content) for m in backend.requests[0].messages] == [
        ("user", "x"),
        ("assistant", live_source),  # reasoning is never sent back
        ("user", "and then?"),
    ]


async def test_a_tool_call_is_shown_under_the_answer_not_in_it(db: Path) -> None:
    from tokentide.backends.events import ToolCallRequested

    script: list[Event | BackendError] = [
        TextDelta("Let me look."),
        ToolCallRequested("get_weather", '{"city": "[/]Paris\x1b[2J"}', "call_1"),
        Finish("tool_calls"),
    ]
    app = make_app(db, ScriptedBackend(script))
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "weather?")
        await app.workers.wait_for_complete()
        await until(pilot, lambda: bool(app.query(".answer-notice")))
        notice = str(app.query_one(".answer-notice", Static).render())
        assert notice.startswith("The model asked to call get_weather(")
        assert "\x1b" not in notice and "[/]Paris" in notice and "[2J" not in notice
        message = app.query_one(AssistantMessage)
        assert message.source == "Let me look."  # the notice is not part of the answer
        assert app.is_running
    assert saved(db, chat(app).conversation_id)[-1][1] == "Let me look."


async def test_alt_o_copies_the_code_block_even_from_the_composer(db: Path) -> None:
    app = make_app(db, ScriptedBackend([TextDelta("Here:\n\n```py\nprint(1)\n```\n"), Finish()]))
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "code please")
        await app.workers.wait_for_complete()
        composer = app.query_one(Composer)
        composer.focus()
        await pilot.press("alt+o")
        await until(pilot, lambda: app.clipboard == "print(1)\n" or app.clipboard == "print(1)")
        assert composer.text == ""  # not typed as the letter "o"


async def test_a_reopened_answer_shows_its_saved_finish_reason_and_stats(db: Path) -> None:
    app = make_app(db, ScriptedBackend(answer("one two three", reason="length")))
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "count")
        await app.workers.wait_for_complete()
        live = str(app.query_one(AssistantMessage).border_subtitle)
    assert live.startswith("length · 3 chunks")  # scripted events are not tokens
    again = make_app(db, ScriptedBackend(answer("x")), continue_last=True)
    async with again.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: bool(again.query(AssistantMessage)))
        reopened = str(again.query_one(AssistantMessage).border_subtitle)
    assert reopened.startswith("length · 3 chunks")


async def test_the_first_screen_says_who_answers_and_goes_with_the_first_prompt(
    db: Path,
) -> None:
    app = make_app(db, ScriptedBackend(answer("Hi.")), prof=profile(model="[b]tiny"))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        welcome = str(app.query_one("#welcome", Static).render())
        assert welcome.startswith("[b]tiny answers here (profile main, openai).")
        assert "esc or ^c stops" in welcome and "--url" in welcome
        await send(pilot, "hello")
        await until(pilot, lambda: not app.query("#welcome"))
        await app.workers.wait_for_complete()
        await app.chat.action_new_conversation()
        await until(pilot, lambda: bool(app.query("#welcome")))


async def test_edit_last_clears_the_status_of_the_answer_it_takes_away(db: Path) -> None:
    app = make_app(db, ScriptedBackend(answer("one two three")))
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "count")
        await app.workers.wait_for_complete()
        await until(pilot, lambda: "3 chunks" in str(app.chat.status.render()))
        await app.chat.action_edit_last()
        await until(pilot, lambda: str(app.chat.status.render()) == "")
        assert app.query_one(Composer).text == "count"
        assert app.query("#welcome")  # the conversation is empty again
