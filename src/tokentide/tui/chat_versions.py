"""The chat screen's commands on the versions of a message: retry and regenerate (a new
version of the answer), edit any prompt (sending makes a new version of it), move
between versions, and continue an answer.  The session does the work; this module
picks what the user points at and keeps the screen in step."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tokentide.tui.plain import plain

if TYPE_CHECKING:
    from tokentide.tui.chat_screen import ChatScreen

__all__ = ["VersionCommands"]


class VersionCommands:
    def __init__(self, screen: ChatScreen) -> None:
        self.screen = screen

    def retry(self) -> None:
        """Retry after an error, or regenerate the last answer (the old one stays, as
        another version)."""
        screen = self.screen
        turns = screen.turns
        if screen.busy() or not turns:
            return
        last = turns[-1]
        if last.role == "user" or last.failed_empty:
            prompt = last if last.role == "user" else turns[-2]
            if screen.composer.text == prompt.content:
                screen.composer.clear_prompt()
            screen.start(screen.session.retry)
        else:
            screen.start(lambda: screen.session.regenerate(last.id))

    async def edit_last(self) -> None:
        """Take the last prompt back into the composer (sending makes a new version)."""
        screen = self.screen
        await screen.wait_idle()
        prompt = next((t for t in reversed(screen.turns) if t.role == "user"), None)
        if prompt is None:
            screen.notify("Nothing to edit yet.", timeout=3)
            return
        self.edit(prompt.id)

    async def edit_message(self) -> None:
        """Edit the focused prompt (or the prompt of the focused answer)."""
        screen = self.screen
        turn = screen.shown.focused_turn()
        if turn is None:
            await self.edit_last()
            return
        if turn.role != "user" and turn.parent_id is not None:
            turn = screen.session.tree[turn.parent_id]
        if turn.role != "user":
            screen.notify("Only your prompts can be edited.", timeout=3)
            return
        await screen.wait_idle()
        self.edit(turn.id)

    def edit(self, turn_id: int) -> None:
        """Put prompt ``turn_id`` in the composer; what follows it leaves the screen
        until the edit is sent (a new version) or cancelled (Esc)."""
        screen = self.screen
        prompt = screen.session.tree[turn_id].content
        composer = screen.composer
        current = composer.prompt
        if current.strip() and current != prompt:
            composer.remember(current)  # what was being typed stays reachable with up
        screen.editing = turn_id
        screen.shown.hide_from(turn_id)
        screen.status.clear()  # it described an answer now off screen
        composer.border_title = plain(
            f"editing a prompt · {screen.key_for('send')} sends a new version · "
            f"{screen.key_for('stop')} cancels"
        )
        composer.set_prompt(prompt)
        composer.focus()
        screen.refresh_bindings()

    def cancel_edit(self) -> None:
        screen = self.screen
        screen.editing = None
        screen.composer.border_title = None
        screen.composer.clear_prompt()
        screen.shown.render()
        screen.refresh_bindings()

    def switch(self, step: int) -> None:
        """Show the previous or next version of the focused message (else of the last
        message on screen that has several)."""
        screen = self.screen
        if screen.busy():
            return
        focused = screen.shown.focused_turn()
        turn = focused or screen.shown.last_with_versions()
        depth = next((i for i, t in enumerate(screen.turns) if turn and t.id == turn.id), None)
        if turn is None or depth is None or not screen.session.switch(turn.id, step):
            screen.notify("No other version of that message that way.", timeout=3)
            return
        if screen.editing is not None:
            self.cancel_edit()
        screen.shown.render(focus=screen.turns[depth].id if focused is not None else None)
        screen.commands.show_use()
        screen.arm_checkpoint()  # the new leaf's write may wait for another process

    def continue_answer(self) -> None:
        """The model goes on after the focused (else the last) answer."""
        screen = self.screen
        if screen.busy():
            return
        turn = screen.shown.focused_turn()
        if turn is None or turn.role != "assistant":
            turn = next((t for t in reversed(screen.turns) if t.role == "assistant"), None)
        if turn is None or not turn.content:
            screen.notify("No answer to continue yet.", timeout=3)
            return
        answer_id = turn.id
        screen.start(lambda: screen.session.continue_answer(answer_id))
