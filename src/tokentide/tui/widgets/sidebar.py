"""The conversation list: newest first, searchable; rename (F2) and delete (Delete)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Input, OptionList
from textual.widgets.option_list import Option

from tokentide.sanitize import sanitize_title

__all__ = ["ConversationItem", "Sidebar"]


@dataclass(frozen=True, slots=True)
class ConversationItem:
    id: str
    title: str
    detail: str = ""


class Sidebar(Vertical):
    """Lists conversations; posts :class:`Sidebar.Opened`, :class:`Sidebar.Search`,
    :class:`Sidebar.RenameRequested` and :class:`Sidebar.DeleteRequested`."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f2", "rename", "Rename", id="rename_conversation"),
        Binding("delete", "delete", "Delete", id="delete_conversation"),
    ]

    DEFAULT_CSS = """
    Sidebar {
        width: 34;
    }
    Sidebar > #conversation-search {
        margin: 0 0 1 0;
    }
    Sidebar > #conversations {
        height: 1fr;
        border: none;
    }
    """

    @dataclass
    class Opened(Message):
        """The user chose a conversation (Enter or a click)."""

        sidebar: Sidebar
        conversation_id: str

        @property
        def control(self) -> Sidebar:
            return self.sidebar

    @dataclass
    class Search(Message):
        """The search box changed: show the conversations matching ``query``."""

        sidebar: Sidebar
        query: str

        @property
        def control(self) -> Sidebar:
            return self.sidebar

    @dataclass
    class RenameRequested(Message):
        """F2 on a conversation: ask for its new title."""

        sidebar: Sidebar
        conversation_id: str

        @property
        def control(self) -> Sidebar:
            return self.sidebar

    @dataclass
    class DeleteRequested(Message):
        """Delete on a conversation: confirm, then delete it."""

        sidebar: Sidebar
        conversation_id: str

        @property
        def control(self) -> Sidebar:
            return self.sidebar

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.items: list[ConversationItem] = []
        self.current: str | None = None
        self.built = False

    def compose(self) -> ComposeResult:
        # Built on first open (build()): the sidebar starts hidden, and its widgets
        # would cost start-up time before the first frame.
        return iter(())

    async def build(self) -> None:
        """Mount the search box and the list, once."""
        if not self.built:
            self.built = True
            await self.mount_all(
                [
                    Input(placeholder="Search conversations", id="conversation-search"),
                    OptionList(id="conversations"),
                ]
            )

    def show(self, items: Sequence[ConversationItem], current: str | None = None) -> None:
        """Replace the list (newest first, as given)."""
        self.items = list(items)
        self.current = current
        options = self.query_one("#conversations", OptionList)
        options.clear_options()
        for item in self.items:
            label = Text(sanitize_title(item.title or "Untitled", limit=60))
            if item.detail:
                label.append("\n")
                label.append(item.detail, style="dim")
            options.add_option(Option(label, id=item.id))
        if current is not None:
            for index, item in enumerate(self.items):
                if item.id == current:
                    options.highlighted = index
                    break

    @property
    def highlighted_id(self) -> str | None:
        options = self.query_one("#conversations", OptionList)
        index = options.highlighted
        if index is None or index >= len(self.items):
            return None
        return self.items[index].id

    @on(OptionList.OptionSelected, "#conversations")
    def _opened(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option.id is not None:
            self.post_message(self.Opened(self, event.option.id))

    @on(Input.Changed, "#conversation-search")
    def _search(self, event: Input.Changed) -> None:
        event.stop()
        self.post_message(self.Search(self, event.value))

    @on(Input.Submitted, "#conversation-search")
    def _search_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.query_one("#conversations", OptionList).focus()

    def action_rename(self) -> None:
        if (conversation := self.highlighted_id) is not None:
            self.post_message(self.RenameRequested(self, conversation))

    def action_delete(self) -> None:
        if (conversation := self.highlighted_id) is not None:
            self.post_message(self.DeleteRequested(self, conversation))
