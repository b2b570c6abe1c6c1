"""'Switch model' in the app (issue 11 item 5): the server's models listed live from the
real loopback server, one picked, and the next answer asks the server for it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.servers.llm_server import LLMServer
from tests.tui.fakes import until
from tokentide.config.model import Profile, Settings
from tokentide.tui.app import ChatApp
from tokentide.tui.model_picker import ModelPicker
from tokentide.tui.widgets.composer import Composer
from tokentide.tui.widgets.messages import AssistantMessage

SIZE = (100, 30)


def make_app(tmp_path: Path, prof: Profile) -> ChatApp:
    settings = Settings(profiles={prof.name: prof}, default=prof.name)
    return ChatApp(settings, prof, history_path=tmp_path / "h.sqlite3")


def painted(app: ChatApp) -> str:
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


def notes(app: ChatApp) -> list[str]:
    return [str(n.message) for n in app._notifications]


async def test_f2_lists_the_servers_models_and_the_next_answer_uses_the_one_picked(
    tmp_path: Path, server: LLMServer
) -> None:
    url = server.url(models="small-1,big-2", flavor="vllm", text="From big.", tag="pick") + "/v1"
    app = make_app(tmp_path, Profile(name="main", api="openai", url=url, model="small-1"))
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await pilot.press("f2")
        await until(pilot, lambda: isinstance(app.screen, ModelPicker) and app.screen.models)
        screen = painted(app)
        assert "● small-1" in screen  # the model in use is marked and highlighted
        assert "big-2" in screen and "2,048 ctx" in screen  # vLLM's max_model_len
        await pilot.press("down", "enter")
        await until(pilot, lambda: not isinstance(app.screen, ModelPicker))
        assert app.chat.profile.model == "big-2"
        assert "Now using model big-2." in notes(app)
        assert "big-2" in str(app.chat.sub_title)  # the header, not only the toast
        composer = app.query_one(Composer)
        composer.focus()
        composer.set_prompt("hello")
        await pilot.press("enter")
        await until(pilot, lambda: not app.chat.generating and app.query(AssistantMessage))
        assert server.record("pick").body["model"] == "big-2"


async def test_a_server_that_cannot_list_says_why_in_the_dialog_and_esc_closes_it(
    tmp_path: Path, server: LLMServer
) -> None:
    url = server.url(status=401) + "/v1"
    app = make_app(tmp_path, Profile(name="main", api="openai", url=url, model="m"))
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await pilot.press("f2")
        await until(pilot, lambda: isinstance(app.screen, ModelPicker) and app.screen.error)
        picker: Any = app.screen
        assert "401" in picker.error or "key" in picker.error.lower()
        assert "esc closes" in painted(app)
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, ModelPicker))
        assert app.chat.profile.model == "m"


async def test_hostile_model_names_are_shown_as_text_and_sent_back_exactly(
    tmp_path: Path, server: LLMServer
) -> None:
    hostile = "evil[/]\x1b]52;c;aGk=\x07[@click=app.quit]x"
    url = server.url(models=json.dumps([hostile]), tag="hostile")
    prof = Profile(name="main", api="openai", url=url + "/v1", model="m")
    app = make_app(tmp_path, prof)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await pilot.press("f2")
        await until(
            pilot,
            lambda: isinstance(app.screen, ModelPicker) and (app.screen.models or app.screen.error),
        )
        picker: Any = app.screen
        assert picker.models, picker.error
        screen = painted(app)
        assert "\x1b" not in screen and "evil[/]" in screen
        await pilot.press("enter")
        await until(pilot, lambda: not isinstance(app.screen, ModelPicker))
        assert app.is_running
        assert app.chat.profile.model == hostile


async def test_an_in_process_profile_says_it_runs_one_model(tmp_path: Path) -> None:
    prof = Profile(name="fn", api="local", options={"target": "tests.predictors.echo:echo"})
    app = make_app(tmp_path, prof)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await pilot.press("f2")
        await until(pilot, lambda: any("runs one model" in n for n in notes(app)))
        assert not isinstance(app.screen, ModelPicker)
