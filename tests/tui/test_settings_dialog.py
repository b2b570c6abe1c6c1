"""The per-conversation settings dialog (issue 12 item 4), driven with Pilot inside a
tiny app with no stylesheet of its own: keys typed into real widgets, the result the
dialog dismisses with recorded."""

from __future__ import annotations

from typing import Any

import pytest
from textual.app import App
from textual.widgets import Input, Label, Select, TextArea

from tests.tui.fakes import until
from tokentide.config.model import Profile
from tokentide.history.settings import ConversationSettings
from tokentide.tui.settings_dialog import ConversationSettingsDialog

SIZE = (100, 50)
PROFILE = Profile(
    name="main", api="openai", model="llama-3", system="You are helpful.", temperature=0.7
)
NUMBER_FIELDS = ("temperature", "max_tokens", "top_p", "seed")


class Host(App[None]):
    """Pushes one dialog and records what it dismisses with."""

    def __init__(self, dialog: ConversationSettingsDialog) -> None:
        super().__init__()
        self.dialog = dialog
        self.results: list[ConversationSettings | None] = []

    def on_mount(self) -> None:
        self.push_screen(self.dialog, self.results.append)


def host(
    current: ConversationSettings | None = None,
    profile: Profile = PROFILE,
    profiles: tuple[str, ...] = ("main", "vllm"),
) -> Host:
    return Host(ConversationSettingsDialog(current, profile, profiles))


async def opened(app: Host, pilot: Any) -> ConversationSettingsDialog:
    await until(pilot, lambda: app.screen is app.dialog and app.dialog.query("#seed"))
    return app.dialog


async def type_into(pilot: Any, dialog: ConversationSettingsDialog, field: str, text: str) -> None:
    """Focus a field and type ``text`` key by key (newline: enter)."""
    dialog.query_one(f"#{field}").focus()
    await pilot.pause()
    keys = ["enter" if c == "\n" else "space" if c == " " else c for c in text]
    await pilot.press(*keys)


async def closed(app: Host, pilot: Any) -> ConversationSettings | None:
    await until(pilot, lambda: app.results)
    assert app.screen is not app.dialog
    return app.results[0]


def painted(app: App[Any]) -> str:
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


def error_of(dialog: ConversationSettingsDialog, field: str) -> str | None:
    label = dialog.query_one(f"#{field}-error", Label)
    return str(label.content) if label.has_class("-shown") and label.display else None


async def test_typed_values_are_saved_with_ctrl_s() -> None:
    app = host()
    async with app.run_test(size=SIZE) as pilot:
        dialog = await opened(app, pilot)
        await type_into(pilot, dialog, "system_prompt", "Be brief.\nAnswer in French.")
        await type_into(pilot, dialog, "model", "  big-2 ")
        await type_into(pilot, dialog, "temperature", "0.2")
        await type_into(pilot, dialog, "max_tokens", "256")
        await type_into(pilot, dialog, "top_p", "1")
        await type_into(pilot, dialog, "seed", "-7")
        await pilot.press("ctrl+s")
        result = await closed(app, pilot)
    assert result == ConversationSettings(
        system_prompt="Be brief.\nAnswer in French.",
        model="big-2",
        temperature=0.2,
        max_tokens=256,
        top_p=1.0,
        seed=-7,
    )


async def test_the_save_button_saves_too_and_ctrl_s_works_from_the_system_prompt() -> None:
    app = host()
    async with app.run_test(size=SIZE) as pilot:
        dialog = await opened(app, pilot)
        await type_into(pilot, dialog, "seed", "3")
        await pilot.click("#settings-save")
        assert await closed(app, pilot) == ConversationSettings(seed=3)
    app = host()
    async with app.run_test(size=SIZE) as pilot:
        dialog = await opened(app, pilot)
        await type_into(pilot, dialog, "system_prompt", "x")
        assert dialog.focused is dialog.query_one(TextArea)
        await pilot.press("ctrl+s")
        assert await closed(app, pilot) == ConversationSettings(system_prompt="x")


async def test_everything_empty_saves_all_none_back_to_the_profile() -> None:
    app = host()
    async with app.run_test(size=SIZE) as pilot:
        await opened(app, pilot)
        await pilot.press("ctrl+s")
        result = await closed(app, pilot)
    assert result is not None and result.is_empty


async def test_a_bad_temperature_is_shown_beside_it_and_keeps_the_dialog_with_nothing_lost() -> (
    None
):
    app = host()
    async with app.run_test(size=SIZE) as pilot:
        dialog = await opened(app, pilot)
        await type_into(pilot, dialog, "system_prompt", "Be brief.")
        await type_into(pilot, dialog, "temperature", "hot")
        await type_into(pilot, dialog, "seed", "42")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: error_of(dialog, "temperature"))
        assert app.screen is dialog and not app.results
        message = error_of(dialog, "temperature")
        assert message is not None and "number" in message and "hot" in message
        assert "Temperature is a number" in painted(app)
        temperature = dialog.query_one("#temperature", Input)
        assert temperature.has_class("-invalid") and dialog.focused is temperature
        assert error_of(dialog, "seed") is None
        # nothing typed is lost
        assert dialog.query_one(TextArea).text == "Be brief."
        assert dialog.query_one("#seed", Input).value == "42"
        await pilot.press("backspace", "backspace", "backspace", *"0.5")  # fixed in place
        assert temperature.value == "0.5"
        await pilot.press("ctrl+s")
        result = await closed(app, pilot)
    assert result == ConversationSettings(system_prompt="Be brief.", temperature=0.5, seed=42)


@pytest.mark.parametrize(
    ("field", "text", "says"),
    [
        ("temperature", "-0.1", "0 or more"),
        ("temperature", "nan", "finite"),
        ("temperature", "inf", "finite"),
        ("top_p", "0", "more than 0"),
        ("top_p", "1.5", "at most 1"),
        ("top_p", "abc", "is a number"),
        ("max_tokens", "0", "at least 1"),
        ("max_tokens", "1.5", "whole number"),
        ("seed", "x", "whole number"),
    ],
)
async def test_each_field_is_checked(field: str, text: str, says: str) -> None:
    app = host()
    async with app.run_test(size=SIZE) as pilot:
        dialog = await opened(app, pilot)
        await type_into(pilot, dialog, field, text)
        await pilot.press("ctrl+s")
        await until(pilot, lambda: error_of(dialog, field))
        assert says in (error_of(dialog, field) or "")
        assert app.screen is dialog and not app.results
        assert [f for f in NUMBER_FIELDS if error_of(dialog, f)] == [field]


async def test_every_bad_field_is_reported_at_once_and_the_first_is_focused() -> None:
    app = host()
    async with app.run_test(size=SIZE) as pilot:
        dialog = await opened(app, pilot)
        await type_into(pilot, dialog, "seed", "x")
        await type_into(pilot, dialog, "max_tokens", "0")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: error_of(dialog, "seed") and error_of(dialog, "max_tokens"))
        assert dialog.focused is dialog.query_one("#max_tokens", Input)
        assert error_of(dialog, "temperature") is None


async def test_esc_and_cancel_dismiss_with_none() -> None:
    app = host()
    async with app.run_test(size=SIZE) as pilot:
        dialog = await opened(app, pilot)
        await type_into(pilot, dialog, "seed", "1")
        await pilot.press("escape")
        assert await closed(app, pilot) is None
    app = host()
    async with app.run_test(size=SIZE) as pilot:
        dialog = await opened(app, pilot)
        await type_into(pilot, dialog, "seed", "1")
        await pilot.click("#settings-cancel")
        assert await closed(app, pilot) is None


async def test_empty_fields_show_the_profiles_values_as_placeholders() -> None:
    app = host()
    async with app.run_test(size=SIZE) as pilot:
        dialog = await opened(app, pilot)
        assert dialog.query_one("#temperature", Input).placeholder == "profile: 0.7"
        assert dialog.query_one("#model", Input).placeholder == "profile: llama-3"
        assert dialog.query_one("#max_tokens", Input).placeholder == "profile: none"
        assert dialog.query_one("#top_p", Input).placeholder == "profile: none"
        screen = painted(app)
        assert "profile: 0.7" in screen and "profile: You are helpful." in screen
        assert "profile: none" in screen


async def test_the_conversations_values_fill_the_fields_and_saving_unchanged_keeps_them() -> None:
    current = ConversationSettings(
        system_prompt="Pirate.", profile="vllm", model="m2", temperature=1e-05, seed=9
    )
    app = host(current)
    async with app.run_test(size=SIZE) as pilot:
        dialog = await opened(app, pilot)
        assert dialog.query_one(TextArea).text == "Pirate."
        assert dialog.query_one("#profile", Select).value == "vllm"
        assert dialog.query_one("#temperature", Input).value == "1e-05"
        await pilot.press("ctrl+s")
        assert await closed(app, pilot) == current


async def test_reset_clears_every_field_and_saves_back_to_the_profile() -> None:
    current = ConversationSettings(
        system_prompt="Pirate.", profile="vllm", model="m2", temperature=0.1, max_tokens=5
    )
    app = host(current)
    async with app.run_test(size=SIZE) as pilot:
        dialog = await opened(app, pilot)
        await type_into(pilot, dialog, "seed", "x")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: error_of(dialog, "seed"))
        await pilot.click("#settings-reset")
        await until(pilot, lambda: not dialog.query_one(TextArea).text)
        assert all(not dialog.query_one(f"#{f}", Input).value for f in ("model", *NUMBER_FIELDS))
        assert dialog.query_one("#profile", Select).value == "main"
        assert error_of(dialog, "seed") is None
        assert app.screen is dialog and not app.results  # reset alone saves nothing
        await pilot.press("ctrl+s")
        result = await closed(app, pilot)
    assert result is not None and result.is_empty


async def test_the_profile_is_chosen_from_the_list() -> None:
    app = host(profiles=("main", "vllm", "tgi"))
    async with app.run_test(size=SIZE) as pilot:
        dialog = await opened(app, pilot)
        select = dialog.query_one("#profile", Select)
        assert select.value == "main"
        select.focus()
        await pilot.press("enter")  # opens the list
        await pilot.press("down", "down", "enter")
        await until(pilot, lambda: select.value == "tgi")
        await pilot.press("ctrl+s")
        assert await closed(app, pilot) == ConversationSettings(profile="tgi")


async def test_a_profile_the_conversation_names_itself_is_kept_even_when_it_is_the_given_one() -> (
    None
):
    vllm = Profile(name="vllm", api="openai")
    app = host(ConversationSettings(profile="vllm"), profile=vllm, profiles=("main",))
    async with app.run_test(size=SIZE) as pilot:
        dialog = await opened(app, pilot)
        assert dialog.profiles == ["main", "vllm"]  # offered although not in the list
        await pilot.press("ctrl+s")
        assert await closed(app, pilot) == ConversationSettings(profile="vllm")


async def test_hostile_text_is_shown_as_text_and_an_unchanged_field_keeps_the_stored_value() -> (
    None
):
    hostile = "evil[/]\x1b]52;c;aGk=\x07[@click=app.quit]x"
    prof = Profile(name=f"p{hostile}", api="openai", model=hostile, system=hostile)
    current = ConversationSettings(system_prompt=f"sys {hostile}", profile=prof.name)
    app = host(current, profile=prof, profiles=(prof.name,))
    async with app.run_test(size=SIZE) as pilot:
        dialog = await opened(app, pilot)
        screen = painted(app)
        assert "\x1b" not in screen and "\x07" not in screen
        assert "profile: evil[/]" in screen and "sys evil[/]" in screen
        assert "[@click=app.quit]" in screen  # literally, not as a link
        assert "\x1b" not in dialog.query_one(TextArea).text
        assert dialog.query_one("#model", Input).placeholder == "profile: evil[/][@click=app.quit]x"
        await pilot.press("ctrl+s")
        result = await closed(app, pilot)
    assert result == current  # the stored text, not the cleaned copy shown


async def test_the_buttons_stay_in_sight_on_a_short_terminal_without_the_apps_stylesheet() -> None:
    app = host()
    async with app.run_test(size=(80, 24)) as pilot:
        dialog = await opened(app, pilot)
        await until(pilot, lambda: "Save (^s)" in painted(app))
        screen = painted(app)
        assert "Reset to profile" in screen and "Cancel" in screen
        assert "╭" in screen and "╰" in screen  # the box's own border, whole
        await type_into(pilot, dialog, "seed", "x")  # the last field, scrolled to
        await pilot.press("ctrl+s")
        await until(pilot, lambda: "Seed is a whole number" in painted(app))
        assert "Save (^s)" in painted(app)
