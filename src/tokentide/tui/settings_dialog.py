"""'Conversation settings': one conversation's system prompt, profile, model and sampling.

A modal over the chat screen (issue 12 item 4).  Every field left empty means "as the
profile says", and shows the profile's value as its placeholder ("profile: 0.7",
"profile: none").  Save (ctrl+s or the button) checks every field at once; a bad one
gets a message beside it and the dialog stays open with everything typed kept.  The
dialog dismisses with a :class:`ConversationSettings` (all None when every field is
empty: "back to the profile") or with None when cancelled (Esc).

Text from the config or the history is shown sanitised; a text field the user left as
it was shown is returned with its original stored value, so opening and saving the
dialog changes nothing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import ClassVar, TypeVar

from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, TextArea

from tokentide.config.model import Profile
from tokentide.history.settings import ConversationSettings
from tokentide.sanitize import sanitize, sanitize_title
from tokentide.tui.plain import plain
from tokentide.tui.widgets.keys import action_key_display

__all__ = ["ConversationSettingsDialog"]

_T = TypeVar("_T")

_INPUTS: tuple[tuple[str, str], ...] = (
    ("model", "Model"),
    ("temperature", "Temperature"),
    ("max_tokens", "Max tokens"),
    ("top_p", "top_p"),
    ("seed", "Seed"),
)
"""The one-line fields: (ConversationSettings field, label)."""

_CHROME = 9
"""Rows of the box that are not fields: border 2, title 1, note 2, buttons 3 + margin 1."""


class ConversationSettingsDialog(ModalScreen[ConversationSettings | None]):
    """Edit ``current`` (None: nothing set yet) over ``profile``; ``profiles`` are the
    names the profile field offers."""

    DEFAULT_CSS = """
    ConversationSettingsDialog { align: center middle; }
    ConversationSettingsDialog > Vertical {
        width: 90%; max-width: 100; height: auto; max-height: 95%;
        border: round $accent; padding: 0 1; background: $surface;
    }
    ConversationSettingsDialog #settings-title { width: 1fr; text-style: bold; }
    ConversationSettingsDialog #settings-note { width: 1fr; color: $text-muted; }
    ConversationSettingsDialog #settings-fields { height: auto; }
    ConversationSettingsDialog .settings-row { height: auto; margin-top: 1; }
    ConversationSettingsDialog .settings-label { width: 14; padding: 1 1 0 0; }
    ConversationSettingsDialog .settings-row > Input,
    ConversationSettingsDialog .settings-row > Select { width: 1fr; }
    ConversationSettingsDialog .settings-row > TextArea { width: 1fr; height: 6; }
    ConversationSettingsDialog .settings-error {
        width: 1fr; margin-left: 14; color: $text-error; display: none;
    }
    ConversationSettingsDialog .settings-error.-shown { display: block; }
    ConversationSettingsDialog #settings-buttons {
        height: auto; align-horizontal: right; margin-top: 1;
    }
    ConversationSettingsDialog #settings-buttons Button { margin-left: 1; min-width: 10; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel"),
        Binding("ctrl+s", "save", "Save", priority=True),
    ]

    def __init__(
        self, current: ConversationSettings | None, profile: Profile, profiles: Sequence[str]
    ) -> None:
        super().__init__()
        self.current = current or ConversationSettings()
        self.profile = profile
        names = list(dict.fromkeys(profiles))
        for name in (profile.name, self.current.profile):
            if name is not None and name not in names:
                names.append(name)
        self.profiles = names
        self._profile_is_set = self.current.profile is not None
        """Whether the conversation names its profile itself (so choosing the given
        profile keeps that setting rather than meaning "the profile's")."""
        self._shown: dict[str, tuple[str, str]] = {}
        """Text field → (the sanitised text shown, the stored value it came from)."""

    def compose(self) -> ComposeResult:
        prof = sanitize_title(self.profile.name, 40)
        with Vertical():
            yield Label(
                plain(f"Settings of this conversation (profile {prof})"), id="settings-title"
            )
            with VerticalScroll(id="settings-fields"):
                with Horizontal(classes="settings-row"):
                    yield Label("System prompt", classes="settings-label")
                    yield TextArea(
                        self._initial("system_prompt"),
                        placeholder=plain(_placeholder(self.profile.system, 300)),
                        soft_wrap=True,
                        id="system_prompt",
                    )
                with Horizontal(classes="settings-row"):
                    yield Label("Profile", classes="settings-label")
                    yield Select(
                        [(plain(sanitize_title(name, 60)), name) for name in self.profiles],
                        allow_blank=False,
                        value=self.current.profile or self.profile.name,
                        id="profile",
                    )
                for name, label in _INPUTS:
                    with Horizontal(classes="settings-row"):
                        yield Label(plain(label), classes="settings-label")
                        yield Input(
                            self._initial(name),
                            placeholder=_placeholder(getattr(self.profile, name)),
                            id=name,
                        )
                    yield Label("", classes="settings-error", id=f"{name}-error")
            save = action_key_display(self.app, self.BINDINGS, "save")
            cancel = action_key_display(self.app, self.BINDINGS, "cancel")
            yield Label(
                plain(f"Empty: the profile's value (greyed) · {save} saves · {cancel} cancels"),
                id="settings-note",
            )
            with Horizontal(id="settings-buttons"):
                yield Button("Reset to profile", id="settings-reset")
                yield Button("Cancel", id="settings-cancel")
                yield Button(plain(f"Save ({save})"), variant="primary", id="settings-save")

    def _initial(self, name: str) -> str:
        value = getattr(self.current, name)
        if value is None:
            return ""
        if isinstance(value, str):
            shown = sanitize(value)
            self._shown[name] = (shown, value)
            return shown
        return str(value)

    def on_mount(self) -> None:
        self.query_one("#system_prompt", TextArea).focus()

    def on_resize(self, event: events.Resize) -> None:
        """The fields scroll and the buttons stay in sight on a short terminal (CSS alone
        cannot cap an auto-height region by what is left of its parent's max-height)."""
        room = int(event.size.height * 0.95) - _CHROME
        self.query_one("#settings-fields").styles.max_height = max(room, 4)

    @on(Button.Pressed, "#settings-save")
    def _save_pressed(self) -> None:
        self.action_save()

    @on(Button.Pressed, "#settings-cancel")
    def _cancel_pressed(self) -> None:
        self.action_cancel()

    @on(Button.Pressed, "#settings-reset")
    def _reset_pressed(self) -> None:
        self.action_reset()

    def action_cancel(self) -> None:
        self.dismiss(None)

    def action_reset(self) -> None:
        """Every field back to "the profile's" (nothing is saved until Save)."""
        self.query_one("#system_prompt", TextArea).text = ""
        self.query_one("#profile", Select).value = self.profile.name
        self._profile_is_set = False
        for name, _label in _INPUTS:
            self.query_one(f"#{name}", Input).value = ""
            self._show_error(name, None)

    def action_save(self) -> None:
        """Check every field; dismiss with the settings, or show what is wrong."""
        bad: list[str] = []
        temperature = self._read("temperature", _temperature, bad)
        max_tokens = self._read("max_tokens", _max_tokens, bad)
        top_p = self._read("top_p", _top_p, bad)
        seed = self._read("seed", _seed, bad)
        if bad:
            self.query_one(f"#{bad[0]}", Input).focus()
            self.call_after_refresh(self.query_one(f"#{bad[0]}-error").scroll_visible)
            return
        chosen = self.query_one("#profile", Select).value
        profile = chosen if isinstance(chosen, str) else None
        if profile == self.profile.name and not self._profile_is_set:
            profile = None
        system = self.query_one("#system_prompt", TextArea).text
        self.dismiss(
            ConversationSettings(
                system_prompt=self._text_value("system_prompt", system),
                profile=profile,
                model=self._text_value("model", self.query_one("#model", Input).value),
                temperature=temperature,
                max_tokens=max_tokens,
                top_p=top_p,
                seed=seed,
            )
        )

    def _read(self, name: str, parse: Callable[[str], _T], bad: list[str]) -> _T | None:
        """One number field parsed (None when empty); its message shown when it is bad."""
        text = self.query_one(f"#{name}", Input).value.strip()
        try:
            value = parse(text) if text else None
        except ValueError as error:
            self._show_error(name, str(error))
            bad.append(name)
            return None
        self._show_error(name, None)
        return value

    def _text_value(self, name: str, text: str) -> str | None:
        """A text field's value: None when blank, the stored original when unchanged."""
        shown = self._shown.get(name)
        if shown is not None and text == shown[0]:
            return shown[1]
        if not text.strip():
            return None
        return text.strip() if name == "model" else text

    def _show_error(self, name: str, message: str | None) -> None:
        label = self.query_one(f"#{name}-error", Label)
        label.update(plain(message or ""))
        label.set_class(message is not None, "-shown")
        self.query_one(f"#{name}", Input).set_class(message is not None, "-invalid")


def _placeholder(value: object, limit: int = 60) -> str:
    if value is None:
        return "profile: none"
    return "profile: " + sanitize_title(str(value), limit)


def _quoted(text: str) -> str:
    return sanitize_title(text, 20)


def _number(text: str, what: str, example: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{what} is a number, like {example}; “{_quoted(text)}” is not.") from None
    if not math.isfinite(value):
        raise ValueError(f"{what} is a finite number, like {example}.")
    return value


def _whole(text: str, what: str, example: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(
            f"{what} is a whole number, like {example}; “{_quoted(text)}” is not."
        ) from None


def _temperature(text: str) -> float:
    value = _number(text, "Temperature", "0.7")
    if value < 0:
        raise ValueError("Temperature is 0 or more (0 is the most predictable), like 0.7.")
    return value


def _top_p(text: str) -> float:
    value = _number(text, "top_p", "0.9")
    if not 0 < value <= 1:
        raise ValueError("top_p is more than 0 and at most 1, like 0.9.")
    return value


def _max_tokens(text: str) -> int:
    value = _whole(text, "Max tokens", "512")
    if value < 1:
        raise ValueError("Max tokens is at least 1, like 512.")
    return value


def _seed(text: str) -> int:
    return _whole(text, "Seed", "42")
