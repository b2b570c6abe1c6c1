"""'New conversation from template' (issue 11 item 8): the palette offers each
``[templates.NAME]``; the new conversation talks to the template's profile with its
model, system prompt and sampling, as the real loopback server receives them."""

from __future__ import annotations

from pathlib import Path

from tests.servers.llm_server import LLMServer
from tests.tui.fakes import until
from tokentide.config.model import Profile, Settings, Template
from tokentide.tui.app import ChatApp
from tokentide.tui.palette import TemplateCommands
from tokentide.tui.widgets.composer import Composer

SIZE = (100, 30)


async def test_a_template_starts_an_empty_conversation_with_its_settings(
    tmp_path: Path, server: LLMServer
) -> None:
    main = Profile(name="main", api="openai", url=server.url(tag="main") + "/v1", model="m")
    coder = Profile(name="coder", api="openai", url=server.url(tag="tpl") + "/v1", model="c1")
    review = Template(
        name="review", profile="coder", model="c2", system="Review [b]code[/b].",
        temperature=0.2, max_tokens=50,
    )  # fmt: skip
    settings = Settings(
        profiles={"main": main, "coder": coder}, templates={"review": review}, default="main"
    )
    app = ChatApp(settings, main, history_path=tmp_path / "h.sqlite3")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        hits = [hit async for hit in TemplateCommands(app.screen).discover()]
        assert [hit.text for hit in hits] == ["New conversation from template: review"]
        assert "profile coder · model c2 · system: Review [b]code[/b]." in str(hits[0].help)
        await app.chat.commands.new_from_template("review")
        assert app.chat.profile.name == "coder" and app.chat.profile.model == "c2"
        assert app.query("#welcome")  # an empty conversation
        composer = app.query_one(Composer)
        composer.focus()
        composer.set_prompt("look at this")
        await pilot.press("enter")
        await until(pilot, lambda: not app.chat.generating and len(app.chat.turns) == 2)
    body = next(r.body for r in server.records if r.tag == "tpl" and r.method == "POST")
    assert body["model"] == "c2"
    assert body["messages"][0] == {"role": "system", "content": "Review [b]code[/b]."}
    assert body["temperature"] == 0.2 and body["max_tokens"] == 50


async def test_an_unknown_template_is_explained_and_nothing_changes(tmp_path: Path) -> None:
    main = Profile(name="main", api="openai", url="http://scripted.test/v1", model="m")
    app = ChatApp(
        Settings(profiles={"main": main}, default="main"), main, history_path=tmp_path / "h"
    )
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await app.chat.commands.new_from_template("nope")
        await until(pilot, lambda: any("nope" in str(n.message) for n in app._notifications))
        assert app.chat.profile is main
