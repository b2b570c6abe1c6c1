"""The chat screen's commands that take a conversation or a message out of the app:
export to a file (Markdown, or JSON with every branch), copy the conversation, copy
the message pointed at, copy its last code block.

What is exported or copied comes from the history (the saved conversation) or from the
message's own source, never from what a widget painted; a copy goes to the clipboard
sanitised (:func:`tokentide.sanitize.sanitize_for_clipboard`: no escape sequence rides
along into the terminal that pastes it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tokentide.errors import TideError
from tokentide.sanitize import sanitize_for_clipboard
from tokentide.tui.dialogs import TextDialog

if TYPE_CHECKING:
    from tokentide.tui.chat_screen import ChatScreen

__all__ = ["ExportCommands"]


class ExportCommands:
    """See the module docstring (one per chat screen: ``screen.exports``)."""

    def __init__(self, screen: ChatScreen) -> None:
        self.screen = screen

    def _saved(self) -> Any:
        screen = self.screen
        store, conversation_id = screen.store, screen.conversation_id
        if store is None or conversation_id is None:
            screen.notify("Nothing saved in this conversation yet.", timeout=3)
            return None
        try:
            store.flush_pending()
            return store.load(conversation_id)
        except TideError as error:
            screen.history_problem(error)
            return None

    def export(self) -> None:
        """Write the conversation to a file: Markdown, or JSON (every branch) for a
        path ending in .json."""

        async def job() -> None:
            from pathlib import Path

            from tokentide.history import export

            screen = self.screen
            conversation = self._saved()
            if conversation is None:
                return
            default = export.default_export_path(conversation.title, conversation.id, "md")
            answer = await screen.app.push_screen_wait(
                TextDialog("Export to (.md Markdown, .json every branch)", str(default))
            )
            if not answer:
                return
            path = Path(answer).expanduser()  # noqa: ASYNC240 - no I/O: a home dir lookup
            try:
                if path.suffix.lower() == ".json":
                    assert screen.store is not None
                    tree = screen.store.messages(conversation.id)
                    text = export.to_json(conversation, messages=tree)
                else:
                    text = export.to_markdown(conversation)
                path.parent.mkdir(parents=True, exist_ok=True)
                export.atomic_write(path, text)
            except (OSError, TideError) as error:
                screen.notify(f"Could not write {path}: {error}", title="Export", severity="error")
                return
            screen.notify(f"Exported to {path}.", title="Export", timeout=5)

        self.screen.run_worker(job(), group="dialog")

    def copy_conversation(self) -> None:
        from tokentide.history.export import to_markdown

        conversation = self._saved()
        if conversation is not None:
            self._copy(to_markdown(conversation), "conversation")

    def copy(self) -> None:
        from tokentide.tui.widgets.messages import AssistantMessage, ErrorMessage, UserMessage

        screen = self.screen
        target = screen.shown.target()
        if target is None:
            screen.notify("Nothing to copy yet.", timeout=3)
            return
        if isinstance(target, ErrorMessage):
            text = target.error_text
        else:
            assert isinstance(target, UserMessage | AssistantMessage)
            text = target.source
        self._copy(text, "message" if screen.app.focused is target else "last answer")

    def copy_code(self) -> None:
        from tokentide.tui.widgets.messages import AssistantMessage, last_code_block

        target = self.screen.shown.target()
        code = last_code_block(target.source) if isinstance(target, AssistantMessage) else None
        if code is None:
            self.screen.notify("No code block in that answer.", timeout=3)
            return
        self._copy(code, "code block")

    def _copy(self, text: str, what: str) -> None:
        clean = sanitize_for_clipboard(text)
        self.screen.app.copy_to_clipboard(clean)
        self.screen.notify(f"Copied the {what} ({len(clean):,} characters).", timeout=3)
