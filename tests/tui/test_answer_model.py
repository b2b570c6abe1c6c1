"""Answer panels are titled with the model, and history keeps the model that answered
(issue 11 item 10): the profile's when it names one, else the one the server named."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.servers.llm_server import LLMServer
from tests.tui.fakes import until
from tokentide.config.model import Profile, Settings
from tokentide.history.export import to_dict
from tokentide.history.store import HistoryStore
from tokentide.tui.app import ChatApp
from tokentide.tui.widgets.composer import Composer
from tokentide.tui.widgets.messages import AssistantMessage

SIZE = (100, 30)


async def answer_once(db: Path, prof: Profile) -> tuple[str, str | None]:
    app = ChatApp(Settings(profiles={prof.name: prof}, default=prof.name), prof, history_path=db)
    async with app.run_test(size=SIZE) as pilot:
        composer = app.query_one(Composer)
        composer.focus()
        composer.set_prompt("hi")
        await pilot.press("enter")
        await until(pilot, lambda: not app.chat.generating and len(app.chat.turns) == 2)
        return str(app.query_one(AssistantMessage).border_title), app.chat.conversation_id


@pytest.mark.parametrize(
    ("model", "title", "saved"),
    [
        (None, "test-model", "test-model"),  # the server's default, as it named it
        ("m", "m", "m"),  # the profile's (the loopback server answers with what is asked)
    ],
)
async def test_the_panel_and_the_export_name_the_model(
    tmp_path: Path, server: LLMServer, model: str | None, title: str, saved: str
) -> None:
    db = tmp_path / "h.sqlite3"
    url = server.url(text="hello") + "/v1"
    prof = Profile(name="srv", api="openai", url=url, model=model)
    shown, conversation = await answer_once(db, prof)
    assert shown == title
    assert conversation is not None
    with HistoryStore.open(db) as store:
        messages = to_dict(store.load(conversation))["messages"]
    assert [m["model"] for m in messages] == [None, saved]
