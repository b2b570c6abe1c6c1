"""The prompt editor at the bottom of the chat screen.

A :class:`~textual.widgets.TextArea` with chat keys:

* Enter sends (:class:`Composer.Submitted`); ctrl+j inserts a newline in every terminal
  (it is a plain line feed), shift+enter too where the terminal reports it;
* up on the first line / down on the last line walk through the prompts sent before,
  keeping what was being typed as the newest entry;
* ctrl+g opens the draft in ``$VISUAL`` / ``$EDITOR`` (the app suspends while it runs)
  and takes back what was saved;
* a huge paste does not go into the editor (a TextArea with megabytes in it is slow to
  edit and to lay out): it becomes a one-line placeholder, ``[pasted text #1: 12,345
  lines]``, expanded back to the exact text when the prompt is sent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

from textual import events
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.timer import Timer
from textual.widgets import TextArea

from tokentide.tui.widgets.keys import key_display

__all__ = ["Composer"]

PASTE_INLINE_CHARS = 20_000
"""Pastes longer than this (or with more lines than PASTE_INLINE_LINES) become a
placeholder."""
PASTE_INLINE_LINES = 400
_PLACEHOLDER = re.compile(r"\[pasted text #(\d+): [\d,]+ lines?, [\d,]+ chars\]")


class Composer(TextArea):
    """Multi-line prompt editor.  Binding ids (``send``, ``newline``) can be remapped
    through the app's keymap (``[keys]`` in the config file)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "submit", "Send", id="send"),
        Binding("ctrl+j,shift+enter", "newline", "Newline", id="newline", show=False),
        Binding("ctrl+g", "external_editor", "Editor", id="external_editor", show=False),
    ]

    DEFAULT_CSS = """
    Composer {
        height: auto;
        min-height: 3;
        max-height: 12;
        padding: 0 1;
    }
    """

    @dataclass
    class Submitted(Message):
        """The user asked to send ``text`` (pasted placeholders expanded)."""

        composer: Composer
        text: str

        @property
        def control(self) -> Composer:
            return self.composer

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(
            id=id,
            classes=classes,
            soft_wrap=True,
            tab_behavior="focus",
            show_line_numbers=False,
            compact=True,
            highlight_cursor_line=False,
        )
        self.sent: list[str] = []
        """Prompts sent before, oldest first."""
        self._history_index: int | None = None
        self._draft = ""
        self._pastes: dict[int, str] = {}
        self._blink_timer: Timer | None = None
        self.answer_streaming = False
        """Set by the chat screen: the editor waits while an answer streams, because the
        app's event loop (and so the stream and its deadlines) is paused while the
        editor runs."""

    # -- text -------------------------------------------------------------------------

    @property
    def prompt(self) -> str:
        """The text as it will be sent: placeholders replaced by what was pasted."""
        return self.expand_pastes(self.text)

    def expand_pastes(self, text: str) -> str:
        pastes = self._pastes

        def replace(match: re.Match[str]) -> str:
            return pastes.get(int(match.group(1)), match.group(0))

        return _PLACEHOLDER.sub(replace, text) if pastes else text

    def set_prompt(self, text: str) -> None:
        """Replace the contents with ``text`` (a huge text becomes a placeholder)."""
        self._pastes.clear()
        self.load_text(self._inline(text))
        self.move_cursor(self.document.end)

    def clear_prompt(self) -> None:
        self._pastes.clear()
        self.load_text("")
        self._history_index = None

    def _inline(self, text: str) -> str:
        lines = text.count("\n") + 1
        if len(text) <= PASTE_INLINE_CHARS and lines <= PASTE_INLINE_LINES:
            return text
        number = len(self._pastes) + 1
        self._pastes[number] = text
        return f"[pasted text #{number}: {lines:,} line{'s' if lines != 1 else ''}, {len(text):,} chars]"

    def _binding_id(self, event: events.Key) -> str | None:
        """The id of this editor's binding that the key pressed stands for (``send``,
        ``newline``, ...), with the app's keymap applied, or None.

        Read from the screen's active bindings (Textual's public view of the focused
        widget's bindings after the keymap), never from the app's private keymap."""
        keys = event.aliases
        if event.key == "newline":  # a bare line feed, as some terminals report ctrl+j
            keys = [*keys, "ctrl+j"]
        screen = self.screen
        if screen.focused is self:
            active = screen.active_bindings
            for key in keys:
                found = active.get(key)
                if found is not None and found.node is self:
                    return found.binding.id
            return None
        for binding in self.BINDINGS:  # not focused (a key posted to it): the defaults
            if isinstance(binding, Binding) and any(
                key.strip() in keys for key in binding.key.split(",")
            ):
                return binding.id
        return None

    # -- the cursor blinks while you type, then rests (no timer ticks in an idle app) ----

    BLINK_FOR: ClassVar[float] = 10.0
    """Seconds after the last key (or focus) that the cursor goes on blinking; then it
    stays lit, as terminals do, so an idle chat wakes the CPU for nothing.  0: it never
    blinks (snapshot tests: a blinking cursor makes a screenshot depend on timing)."""

    def _wake_cursor(self) -> None:
        if self.BLINK_FOR <= 0:
            self.cursor_blink = False
            return
        if not self.cursor_blink:
            self.cursor_blink = True
        if self._blink_timer is None:
            self._blink_timer = self.set_interval(self.BLINK_FOR, self._rest_cursor)
        else:  # one timer for good, restarted by each key (not a new task per key)
            self._blink_timer.reset()
            self._blink_timer.resume()

    def _rest_cursor(self) -> None:
        self.cursor_blink = False
        if self._blink_timer is not None:
            self._blink_timer.pause()

    def _on_focus(self, event: events.Focus) -> None:
        super()._on_focus(event)
        self._wake_cursor()

    async def _on_key(self, event: events.Key) -> None:
        self._wake_cursor()
        # Send/newline are handled here, in order with the typed characters: a priority
        # binding would run before the keys typed just ahead of it reached the editor
        # (``hello⏎`` arriving in one read would send an empty prompt).
        binding = self._binding_id(event)
        if binding == "send":
            event.stop()
            event.prevent_default()
            self.action_submit()
            return
        if binding == "newline":
            event.stop()
            event.prevent_default()
            self.action_newline()
            return
        await super()._on_key(event)

    async def _on_paste(self, event: events.Paste) -> None:
        text = event.text.replace("\r\n", "\n").replace("\r", "\n")
        if len(text) <= PASTE_INLINE_CHARS and text.count("\n") < PASTE_INLINE_LINES:
            await super()._on_paste(event)
            return
        event.stop()
        event.prevent_default()
        if self.read_only:
            return
        result = self.replace(self._inline(text), *self.selection)
        self.move_cursor(result.end_location)
        self.focus()

    # -- actions ----------------------------------------------------------------------

    def action_submit(self) -> None:
        text = self.prompt
        if text.strip():
            self.post_message(self.Submitted(self, text))

    def action_newline(self) -> None:
        if not self.read_only:
            self.insert("\n")

    def action_external_editor(self) -> None:
        """Edit the draft (pastes expanded) in the user's editor; a failure keeps it."""
        from textual.app import SuspendNotSupported

        from tokentide.tui.external_editor import EditorError, edit_text, editor_command

        if self.read_only:
            return
        if self.answer_streaming:
            self.notify(
                f"An answer is streaming: stop it ({key_display(self.screen, 'stop', 'esc')}) "
                "or let it finish, then open the editor.",
                title="Editor",
                severity="warning",
            )
            return
        try:
            argv = editor_command()
            with self.app.suspend():
                edited = edit_text(self.prompt, argv)
        except EditorError as error:
            self.notify(str(error), title="Editor", severity="warning")
            return
        except SuspendNotSupported:
            self.notify(
                "This terminal cannot hand the screen to an editor.",
                title="Editor",
                severity="warning",
            )
            return
        if edited != self.prompt:
            self.set_prompt(edited)
        self.focus()

    def remember(self, text: str) -> None:
        """Add a sent prompt to the up/down history."""
        if text.strip() and (not self.sent or self.sent[-1] != text):
            self.sent.append(text)
        self._history_index = None

    def action_cursor_up(self, select: bool = False) -> None:
        if select or self.cursor_location[0] > 0 or not self.sent:
            super().action_cursor_up(select)
            return
        if self._history_index is None:
            self._draft = self.text
            self._history_index = len(self.sent)
        if self._history_index > 0:
            self._history_index -= 1
            self._show_history(self.sent[self._history_index], cursor_at_end=False)

    def action_cursor_down(self, select: bool = False) -> None:
        last_row = self.document.line_count - 1
        if select or self.cursor_location[0] < last_row or self._history_index is None:
            super().action_cursor_down(select)
            return
        self._history_index += 1
        if self._history_index >= len(self.sent):
            self._history_index = None
            self._show_history(self._draft, cursor_at_end=True)
        else:
            self._show_history(self.sent[self._history_index], cursor_at_end=True)

    def _show_history(self, text: str, *, cursor_at_end: bool) -> None:
        self._pastes.clear()
        self.load_text(self._inline(text))
        if cursor_at_end:
            self.move_cursor(self.document.end)
        else:
            self.move_cursor((0, len(self.document[0])))
