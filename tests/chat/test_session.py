"""The chat session without any UI: every operation on a conversation's tree, with a
real history store (a SQLite file) and a scripted backend (the requests it got are
what the session built)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from tests.tui.fakes import ScriptedBackend, answer
from tokentide.backends.events import Event, Finish, ReasoningDelta, TextDelta
from tokentide.chat.live import LiveAnswer
from tokentide.chat.parts import NodePart, ReasoningPart, TextPart, TokensPart
from tokentide.chat.session import ChatSession
from tokentide.chat.tree import Turn
from tokentide.config.model import Profile, Settings
from tokentide.errors import BackendError, CannotConnect, TideError, UsageError
from tokentide.history.settings import ConversationSettings
from tokentide.history.store import HistoryStore


class Continuing(ScriptedBackend):
    continues_answers = True


@pytest.fixture
def store(tmp_path: Path) -> Any:
    store = HistoryStore.open(tmp_path / "history.sqlite3")
    yield store
    store.close()


PROFILE = Profile(name="main", api="openai", url="http://scripted.test/v1", model="m", system="sys")


def session(
    store: HistoryStore | None, *scripts: list[Event | BackendError], **kw: Any
) -> ChatSession:
    backend = kw.pop("backend", None) or ScriptedBackend(*scripts)
    config = Settings(profiles={"main": PROFILE}, default="main")
    problems: list[TideError] = []
    chat = ChatSession(config, PROFILE, store, backend=backend, report=problems.append, **kw)
    chat.problems = problems  # type: ignore[attr-defined]
    return chat


async def drain(chat: ChatSession, live: LiveAnswer) -> Turn | None:
    async for _batch in live.batches():
        pass
    return chat.finish(live)


def requests(chat: ChatSession) -> list[list[tuple[str, str]]]:
    backend = chat.backend
    assert isinstance(backend, ScriptedBackend)
    return [[(m.role, m.content) for m in r.messages] for r in backend.requests]


def saved(store: HistoryStore, chat: ChatSession) -> list[tuple[str, str, str]]:
    assert chat.conversation_id is not None
    return [(m.role, m.content, m.status) for m in store.load(chat.conversation_id).messages]


async def test_send_answer_and_the_next_request_carries_the_branch(store: HistoryStore) -> None:
    chat = session(store, answer("One."), answer("Two."))
    chat.send("first")
    await drain(chat, chat.answer())
    chat.send("second")
    turn = await drain(chat, chat.answer())
    assert turn is not None and turn.content == "Two." and turn.status == "complete"
    assert requests(chat)[1] == [
        ("system", "sys"), ("user", "first"), ("assistant", "One."), ("user", "second"),
    ]  # fmt: skip
    assert saved(store, chat) == [
        ("user", "first", "complete"), ("assistant", "One.", "complete"),
        ("user", "second", "complete"), ("assistant", "Two.", "complete"),
    ]  # fmt: skip
    assert not chat.problems  # type: ignore[attr-defined]


async def test_regenerate_keeps_the_old_answer_as_a_sibling(store: HistoryStore) -> None:
    chat = session(store, answer("First try."), answer("Second try."))
    chat.send("q")
    first = await drain(chat, chat.answer())
    assert first is not None
    second = await drain(chat, chat.regenerate(first.id))
    assert second is not None
    assert [t.content for t in chat.branch] == ["q", "Second try."]
    assert chat.siblings(second.id) == (2, 2)
    assert requests(chat)[1] == [("system", "sys"), ("user", "q")]
    assert chat.switch(second.id, -1)
    assert [t.content for t in chat.branch] == ["q", "First try."]
    assert not chat.switch(first.id, -1)
    assert saved(store, chat)[-1] == ("assistant", "First try.", "complete")  # leaf saved


async def test_editing_a_middle_prompt_branches_and_requests_follow_it(
    store: HistoryStore,
) -> None:
    chat = session(store, answer("A."), answer("B."), answer("C."), answer("D."))
    q1 = chat.send("one")
    await drain(chat, chat.answer())
    chat.send("two")
    await drain(chat, chat.answer())
    edited = chat.edit(q1.id, "one, edited")
    assert edited.parent_id == q1.parent_id and chat.siblings(edited.id) == (2, 2)
    await drain(chat, chat.answer())
    assert requests(chat)[2] == [("system", "sys"), ("user", "one, edited")]
    assert [t.content for t in chat.branch] == ["one, edited", "C."]
    # Back to the first version: the whole branch below it comes back.
    assert chat.switch(edited.id, -1)
    assert [t.content for t in chat.branch] == ["one", "A.", "two", "B."]
    chat.send("three")
    await drain(chat, chat.answer())
    assert requests(chat)[3][-3:] == [("user", "two"), ("assistant", "B."), ("user", "three")]
    # Reopened from the store: the same tree and the same branch on screen.
    again = session(store)
    assert chat.conversation_id is not None
    again.open(chat.conversation_id)
    assert [t.content for t in again.branch] == ["one", "A.", "two", "B.", "three", "D."]
    assert again.siblings(again.branch[0].id) == (1, 2)
    assert len(again.tree) == 8


async def test_a_switch_returns_to_the_branch_last_shown_below(store: HistoryStore) -> None:
    chat = session(store, answer("a"), answer("b"), answer("c"))
    q = chat.send("q")
    a = await drain(chat, chat.answer())
    assert a is not None
    b = await drain(chat, chat.regenerate(a.id))  # q → a | b
    assert b is not None
    other = chat.edit(q.id, "q2")  # a second root
    await drain(chat, chat.answer())
    assert chat.switch(other.id, -1)
    assert [t.content for t in chat.branch] == ["q", "b"]  # b was on screen under q


async def test_continue_after_a_stop_appends_and_keeps_the_stopped_version(
    store: HistoryStore,
) -> None:
    script: list[Event | BackendError] = [TextDelta("1, 2,"), TextDelta(" 3,")]
    backend = Continuing(script, [TextDelta(" 4, 5."), Finish("stop")], pause_before=1)
    chat = session(store, backend=backend)
    chat.send("count")
    live = chat.answer()
    batches = live.batches()
    await anext(batches)  # the first text arrived
    live.generation.cancel()
    backend.resume.set()
    async for _ in batches:
        pass
    stopped = chat.finish(live)
    assert stopped is not None and stopped.status == "stopped"
    assert stopped.content == "1, 2,"
    backend.pause_before = None
    more = await drain(chat, chat.continue_answer(stopped.id))
    assert more is not None and more.content == "1, 2, 4, 5." and more.status == "complete"
    assert requests(chat)[1] == [("system", "sys"), ("user", "count"), ("assistant", "1, 2,")]
    assert chat.siblings(more.id) == (2, 2)
    assert saved(store, chat)[-1] == ("assistant", "1, 2, 4, 5.", "complete")


async def test_continue_is_refused_where_the_backend_cannot(store: HistoryStore) -> None:
    chat = session(store, answer("cut", reason="length"))
    chat.send("q")
    turn = await drain(chat, chat.answer())
    assert turn is not None and turn.finish_reason == "length"
    with pytest.raises(UsageError, match="cannot continue"):
        chat.continue_answer(turn.id)


async def test_stopped_before_anything_keeps_the_prompt_only(store: HistoryStore) -> None:
    backend = ScriptedBackend([TextDelta("never")], pause_before=0)
    chat = session(store, backend=backend)
    prompt = chat.send("go")
    live = chat.answer()
    batches = live.batches()
    pending = anext(batches)
    await backend.paused.wait()
    live.generation.cancel()
    with pytest.raises(StopAsyncIteration):
        await pending
    assert chat.finish(live) is None
    assert [t.id for t in chat.branch] == [prompt.id]
    assert saved(store, chat) == [("user", "go", "complete")]


async def test_a_failure_is_saved_and_retry_replaces_the_empty_error(store: HistoryStore) -> None:
    chat = session(store, [CannotConnect("down", server="s")], answer("Back."))
    chat.profile = replace(PROFILE, max_retries=0)
    chat.send("q")
    failed = await drain(chat, chat.answer())
    assert failed is not None and failed.failed_empty and failed.error == "down"
    assert saved(store, chat)[-1] == ("assistant", "", "error")
    back = await drain(chat, chat.retry())
    assert back is not None and back.content == "Back."
    assert [t.content for t in chat.branch] == ["q", "Back."]
    assert len(chat.tree) == 2
    assert saved(store, chat) == [("user", "q", "complete"), ("assistant", "Back.", "complete")]


async def test_the_answer_record_comes_from_the_events(store: HistoryStore) -> None:
    script: list[Event | BackendError] = [
        ReasoningDelta("think"),
        TextDelta("a", logprob=-0.1),
        TextDelta("b", logprob=-2.0),
        TextDelta("x", node_id="n1"),
        TextDelta("</s>", special=True),
        Finish("stop"),
    ]
    chat = session(store, script)
    chat.send("q")
    turn = await drain(chat, chat.answer())
    assert turn is not None
    assert turn.parts == (
        ReasoningPart("think"),
        TextPart("ab"),
        NodePart("n1", "x"),
        TokensPart((("a", -0.1), ("b", -2.0), ("x", None))),
    )
    assert turn.content == "ab\n\n**n1**\n\nx"
    assert chat.conversation_id is not None
    stored = store.load(chat.conversation_id).messages[-1]
    assert stored.content == turn.content and stored.reasoning == "think"
    assert stored.nodes == [("n1", "x")] and stored.tokens[:2] == [("a", -0.1), ("b", -2.0)]
    again = session(store)
    again.open(chat.conversation_id)
    assert again.branch[-1].parts == turn.parts


async def test_delete_branch_moves_to_the_remaining_version(store: HistoryStore) -> None:
    chat = session(store, answer("a"), answer("b"))
    chat.send("q")
    a = await drain(chat, chat.answer())
    assert a is not None
    b = await drain(chat, chat.regenerate(a.id))
    assert b is not None
    chat.delete_branch(b.id)
    assert [t.content for t in chat.branch] == ["q", "a"]
    assert chat.siblings(a.id) == (1, 1)
    assert saved(store, chat) == [("user", "q", "complete"), ("assistant", "a", "complete")]
    chat.delete_branch(chat.branch[0].id)
    assert chat.branch == [] and len(chat.tree) == 0


async def test_fork_copies_the_branch_to_a_new_conversation(store: HistoryStore) -> None:
    chat = session(store, answer("A."), answer("B."))
    chat.send("one")
    a = await drain(chat, chat.answer())
    chat.send("two")
    await drain(chat, chat.answer())
    assert a is not None
    forked = chat.fork(a.id)
    assert forked != chat.conversation_id
    assert [m.content for m in store.load(forked).messages] == ["one", "A."]
    again = session(store)
    again.open(forked)
    assert [t.content for t in again.branch] == ["one", "A."]


async def test_settings_go_into_requests_and_are_saved(store: HistoryStore) -> None:
    chat = session(store, answer("ok"))
    chat.send("q")
    await drain(chat, chat.answer())
    own = ConversationSettings(system_prompt="Be terse.", temperature=0.2, seed=7, model="m2")
    wanted = chat.set_settings(own)
    assert wanted is not None and wanted.model == "m2"  # the caller switches backend
    chat.profile = wanted
    chat.send("again")
    await drain(chat, chat.answer())
    backend = chat.backend
    assert isinstance(backend, ScriptedBackend)
    request = backend.requests[-1]
    assert request.messages[0].content == "Be terse."
    assert (request.temperature, request.seed, request.model) == (0.2, 7, "m2")
    assert chat.conversation_id is not None
    assert store.settings(chat.conversation_id) == own
    again = session(store)
    assert again.open(chat.conversation_id) is not None  # asks for model m2
    assert again.own == own and again.system_prompt == "Be terse."


async def test_without_a_store_everything_works_in_memory() -> None:
    chat = session(None, answer("a"), answer("b"))
    q = chat.send("q")
    a = await drain(chat, chat.answer())
    assert a is not None and a.id < 0 and q.id < 0
    b = await drain(chat, chat.regenerate(a.id))
    assert b is not None and chat.siblings(b.id) == (2, 2)
    with pytest.raises(UsageError):
        chat.fork(a.id)


async def test_a_broken_history_is_reported_and_the_chat_goes_on(
    store: HistoryStore, tmp_path: Path
) -> None:
    chat = session(store, answer("fine"))
    store.close()  # every write now fails
    chat.send("q")
    turn = await drain(chat, chat.answer())
    assert turn is not None and turn.content == "fine"
    assert chat.problems  # type: ignore[attr-defined]
    assert [t.content for t in chat.branch] == ["q", "fine"]


async def test_submit_decides_what_a_sent_prompt_means(store: HistoryStore) -> None:
    chat = session(store, [CannotConnect("down", server="s")], answer("ok"), answer("again"))
    chat.profile = replace(PROFILE, max_retries=0)
    first = await drain(chat, chat.submit("q")())  # a new prompt
    assert first is not None and first.failed_empty
    retried = await drain(chat, chat.submit("q")())  # the failed prompt sent again
    assert retried is not None and retried.content == "ok"
    assert [t.content for t in chat.branch] == ["q", "ok"] and len(chat.tree) == 2
    prompt = chat.branch[0]
    edited = await drain(chat, chat.submit("q2", editing=prompt.id)())
    assert edited is not None
    assert [t.content for t in chat.branch] == ["q2", "again"]
    assert chat.siblings(chat.branch[0].id) == (2, 2)
    assert requests(chat)[-1] == [("system", "sys"), ("user", "q2")]


async def test_a_failed_history_write_never_names_an_unsaved_turn_to_the_store(
    store: HistoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An answer whose row could not be created lives in memory only; what follows it
    is not filed under some other message, and nothing raises into the caller."""
    from tokentide.errors import HistoryError

    chat = session(store, answer("lost"), answer("next"))
    chat.send("first")
    real = store.record_answer

    def failing(*args: Any, **kwargs: Any) -> Any:
        monkeypatch.setattr(store, "record_answer", real)
        raise HistoryError("disk full")

    monkeypatch.setattr(store, "record_answer", failing)
    lost = await drain(chat, chat.answer())
    assert lost is not None and lost.content == "lost"
    chat.send("second")  # under an answer the store does not hold
    turn = await drain(chat, chat.answer())
    assert turn is not None and turn.content == "next"
    assert [t.content for t in chat.branch] == ["first", "lost", "second", "next"]
    assert saved(store, chat) == [("user", "first", "complete")]  # nothing misfiled
    assert chat.problems  # type: ignore[attr-defined]


async def test_versions_made_while_the_history_was_locked_can_be_deleted(
    tmp_path: Path,
) -> None:
    from tests.history.test_busy import Locker

    with HistoryStore.open(tmp_path / "busy.sqlite3", busy_timeout=0.05) as busy:
        chat = session(busy, answer("one"), answer("two"))
        chat.send("q")
        first = await drain(chat, chat.answer())
        locker = Locker(busy.path)
        second = await drain(chat, chat.regenerate(first.id))  # type: ignore[union-attr]
        assert second is not None and second.id < 0  # a queued write's id
        locker.release()
        assert busy.flush_pending() == 0
        chat.delete_branch(second.id)
        assert not chat.problems  # type: ignore[attr-defined]
        assert chat.conversation_id is not None
        assert [m.content for m in busy.messages(chat.conversation_id)] == ["q", "one"]


async def test_a_regenerate_stopped_at_once_shows_the_old_answer_again(
    store: HistoryStore,
) -> None:
    backend = ScriptedBackend(answer("One."), [TextDelta("never")], answer("Two."))
    chat = session(store, backend=backend)
    chat.send("q")
    one = await drain(chat, chat.answer())
    assert one is not None
    backend.pause_before = 0
    live = chat.regenerate(one.id)
    batches = live.batches()
    pending = anext(batches)
    await backend.paused.wait()
    live.generation.cancel()
    with pytest.raises(StopAsyncIteration):
        await pending
    assert chat.finish(live) is None
    assert [t.content for t in chat.branch] == ["q", "One."]
    backend.pause_before = None
    chat.send("next")
    assert chat.branch[-2].id == one.id  # follows the answer on screen, not beside it
    assert chat.conversation_id is not None
    assert [m.content for m in store.load(chat.conversation_id).messages] == ["q", "One.", "next"]


async def test_one_conversation_s_model_does_not_carry_into_the_next(
    store: HistoryStore,
) -> None:
    chat = session(store, answer("ok"))
    chat.send("q")
    await drain(chat, chat.answer())
    wanted = chat.set_settings(ConversationSettings(model="big"))
    assert wanted is not None and wanted.model == "big"
    chat.profile = wanted
    back = chat.new_conversation()
    assert back is not None and back.model == "m"  # the chat's own profile again
    chat.profile = back
    assert chat.set_settings(ConversationSettings(model="big")) is not None
    chat.profile = replace(PROFILE, model="big")
    cleared = chat.set_settings(None)  # "empty means the profile's"
    assert cleared is not None and cleared.model == "m"


async def test_a_continue_that_brings_nothing_makes_no_copy(store: HistoryStore) -> None:
    backend = Continuing(answer("Partial"), [CannotConnect("down", server="s")])
    chat = session(store, backend=backend)
    chat.profile = replace(PROFILE, max_retries=0)
    chat.send("q")
    partial = await drain(chat, chat.answer())
    assert partial is not None
    assert await drain(chat, chat.continue_answer(partial.id)) is None
    assert [t.content for t in chat.branch] == ["q", "Partial"]
    assert chat.siblings(partial.id) == (1, 1)


async def test_closing_with_an_answer_its_view_never_finished_saves_it_stopped(
    store: HistoryStore,
) -> None:
    backend = ScriptedBackend(answer("Half an answer"), pause_before=2)
    chat = session(store, backend=backend)
    chat.send("go")
    live = chat.answer()
    async for _batch in live.batches():  # the view took some text, then went away
        break
    await chat.close()
    assert saved(store, chat)[-1][0::2] == ("assistant", "stopped")
    assert chat.live is None
