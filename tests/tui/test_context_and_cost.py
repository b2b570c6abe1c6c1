"""The status line's context and cost (issue 11 item 6), against the real loopback
server: prompt tokens and context from the server's ``usage``, the window from the
profile or the server's model list, the cost at the profile's prices, and the same
figures again when the conversation is reopened."""

from __future__ import annotations

from pathlib import Path

from tests.servers.llm_server import LLMServer
from tests.tui.fakes import until
from tokentide.config.model import Profile, Settings
from tokentide.tui.app import ChatApp
from tokentide.tui.widgets.composer import Composer

SIZE = (140, 30)


def make_app(db: Path, prof: Profile, **kwargs: object) -> ChatApp:
    settings = Settings(profiles={prof.name: prof}, default=prof.name)
    return ChatApp(settings, prof, history_path=db, **kwargs)  # type: ignore[arg-type]


async def ask(app: ChatApp, pilot: object, text: str) -> None:
    composer = app.query_one(Composer)
    composer.focus()
    composer.set_prompt(text)
    await pilot.press("enter")  # type: ignore[attr-defined]
    await until(pilot, lambda: not app.chat.generating and app.chat.turns[-1].role == "assistant")


def status(app: ChatApp) -> str:
    return str(app.chat.status.render())


async def test_prompt_tokens_context_and_cost_of_the_answer_and_the_chat(
    tmp_path: Path, server: LLMServer
) -> None:
    url = server.url(text="one two three four", tag="cost") + "/v1"
    prof = Profile(
        name="paid", api="openai", url=url, model="m",
        price_in=1.0, price_out=2.0, context_window=100,
    )  # fmt: skip
    db = tmp_path / "h.sqlite3"
    app = make_app(db, prof)
    async with app.run_test(size=SIZE) as pilot:
        await ask(app, pilot, "a b c")
        body = server.record("cost").body
        first = status(app)
        # The server counted 4 answer tokens and the prompt's words (messages, system...).
        assert "4 tokens" in first
        assert "prompt " in first and "/100 (" in first
        assert "cost 0.0000" in first and "(chat" not in first
        await ask(app, pilot, "d e f g")
        second = status(app)
        assert "(chat 0.0000" in second
        conversation = app.chat.conversation_id
    assert body["stream_options"] == {"include_usage": True}
    again = make_app(db, prof, conversation_id=conversation)
    async with again.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: again.chat.history_painted.is_set())
        assert status(again) == second.split(" · prompt ", 1)[1].join(["prompt ", ""])


async def test_the_window_comes_from_the_servers_model_list_when_the_profile_has_none(
    tmp_path: Path, server: LLMServer
) -> None:
    url = server.url(text="ok then", models="m", flavor="vllm", n_ctx=4096, tag="window")
    prof = Profile(name="vllm", api="openai", url=url + "/v1", model="m")
    app = make_app(tmp_path / "h.sqlite3", prof)
    async with app.run_test(size=SIZE) as pilot:
        await ask(app, pilot, "hello")
        await until(pilot, lambda: "/4,096 (" in status(app))
        assert "cost" not in status(app)  # no prices, no cost
        await ask(app, pilot, "again")
        await app.workers.wait_for_complete()  # a second listing would be in flight
        listings = [r for r in server.records if r.tag == "window" and r.method == "GET"]
        assert len(listings) == 1  # learnt once per server and model


async def test_a_server_that_reports_no_usage_shows_chunks_and_no_context(
    tmp_path: Path, server: LLMServer
) -> None:
    url = server.url(text="x y z", usage=0) + "/v1"
    prof = Profile(name="plain", api="openai", url=url, model="m", price_in=1.0)
    app = make_app(tmp_path / "h.sqlite3", prof)
    async with app.run_test(size=SIZE) as pilot:
        await ask(app, pilot, "hello")
        text = status(app)
        assert "chunks" in text and "prompt" not in text and "cost" not in text
