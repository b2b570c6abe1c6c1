"""The widgets of the branch on screen: one entry per turn (its message, and an error
note after a failure), kept in step with the session's branch.

:meth:`BranchView.render` compares the branch with what is shown, keeps the common
start and replaces the rest, so a regenerated answer, an edit or a switch between
versions rebuilds only what changed; :meth:`BranchView.show_all` shows an opened
conversation newest first: the screenful at the end is painted before older messages
are mounted above it, a chunk at a time, up to :data:`HISTORY_WINDOW` messages.  Older
ones wait, unbuilt, behind an :class:`EarlierMessages` line at the top, and come a
chunk at a time as the reader scrolls up to it (or clicks it), so opening a conversation
of thousands of messages costs what opening its last few screens does (issue 17).
Messages with other versions show ``‹ 2/3 ›``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from textual.message import Message
from textual.widgets import Static

from tokentide.errors import BackendError, TideError
from tokentide.tui.plain import plain
from tokentide.tui.widgets.keys import app_key_display

if TYPE_CHECKING:
    from textual.widget import Widget

    from tokentide.chat.session import ChatSession
    from tokentide.chat.tree import Turn
    from tokentide.tui.chat_screen import ChatScreen
    from tokentide.tui.widgets.messages import AssistantMessage

__all__ = [
    "HISTORY_CHUNK",
    "HISTORY_FIRST_PAINT",
    "HISTORY_WINDOW",
    "BranchView",
    "EarlierMessages",
]

HISTORY_FIRST_PAINT: Final = 8
"""Saved messages mounted before the first paint of an opened conversation (a screenful
and more); older ones follow, HISTORY_CHUNK at a time, above them."""
HISTORY_CHUNK: Final = 12
HISTORY_WINDOW: Final = 48
"""Messages of an opened conversation mounted at first (several screenfuls); older ones
are mounted, HISTORY_CHUNK at a time, when the reader scrolls up to them."""


class EarlierMessages(Static):
    """ "↑ N earlier messages" at the top of a conversation whose start is not mounted yet;
    scrolling up to it (or a click) shows more."""

    DEFAULT_CSS = """
    EarlierMessages {
        height: auto;
        margin: 1 0 0 0;
        text-align: center;
        color: $text-muted;
    }
    """

    def on_click(self) -> None:
        self.post_message(self.Wanted(self))

    @dataclass
    class Wanted(Message):
        """The reader wants the earlier messages shown (a click on the line)."""

        line: EarlierMessages

        @property
        def control(self) -> EarlierMessages:
            return self.line


class BranchView:
    """See the module docstring."""

    def __init__(self, screen: ChatScreen) -> None:
        self.screen = screen
        self._entries: list[tuple[int, list[Widget]]] = []
        self._earlier: list[int] = []
        """The branch's first turns, not mounted yet (oldest first)."""
        self._earlier_line: EarlierMessages | None = None

    def __bool__(self) -> bool:
        return bool(self._entries)

    @property
    def _session(self) -> ChatSession:
        return self.screen.session

    # -- the first screen ------------------------------------------------------------------

    def welcome(self) -> None:
        """The first screen: who answers, the keys, and how to point tide elsewhere."""
        from textual.widgets import Static

        from tokentide.chat.labels import model_label

        screen = self.screen
        profile = screen.profile

        key = screen.key_for
        palette = app_key_display(screen.app, "command_palette")
        quits = app_key_display(screen.app, "quit")
        text = (
            f"{model_label(profile)} answers here (profile {profile.name}, {profile.api}).\n"
            f"{key('send')} sends · {key('newline')} new line · "
            f"{key('external_editor')} your editor · "
            f"{key('stop')} or {key('interrupt')} stops · "
            f"{key('retry')} regenerates · {key('edit_last')} edits the last prompt · "
            f"{key('toggle_sidebar')} conversations · {palette} every command · {quits} quits\n"
            f"Nothing is replaced: a regenerated answer or an edited prompt is a new version, "
            f"{key('branch_previous')}/{key('branch_next')} move between them · "
            f"{key('continue_answer')} continues an answer · "
            f"{key('conversation_settings')} this conversation's settings\n"
            "Another server: tide chat --api openai --url http://HOST:PORT/v1, or a "
            "profile in the config file (tide config path; tide config init writes one)."
        )
        existing = screen.view.query("#welcome")
        if existing:
            existing.first(Static).update(plain(text))
        else:
            screen.view.mount(Static(plain(text), id="welcome", markup=False))

    def _hide_welcome(self) -> None:
        for widget in self.screen.view.query("#welcome"):
            widget.remove()

    # -- keeping in step with the branch ---------------------------------------------------

    def clear(self) -> None:
        """Nothing on screen (a new or another conversation)."""
        self.screen.view.unfold()
        self.screen.view.remove_children()
        self._entries.clear()
        self._earlier.clear()
        self._earlier_line = None

    def render(self, *, skip: int | None = None, focus: int | None = None) -> None:
        """Show the session's branch (without turn ``skip``, the answer about to stream
        in); focus turn ``focus``'s message when given."""
        branch = [turn for turn in self._session.branch if turn.id != skip]
        earlier = len(self._earlier)
        if earlier and [t.id for t in branch[:earlier]] != self._earlier:
            self.show_earlier(len(self._earlier))  # the change is further up: show it all
            earlier = 0
        branch = branch[earlier:]
        keep = 0
        for (shown, _), turn in zip(self._entries, branch, strict=False):
            if shown != turn.id:
                break
            keep += 1
        self._drop(keep)
        widgets: list[Widget] = []
        for turn in branch[keep:]:
            made = self._widgets(turn)
            self._entries.append((turn.id, made))
            widgets.extend(made)
        if widgets:
            self._hide_welcome()
            self.screen.view.mount_all(widgets)
        elif not self._entries and skip is None:
            self.welcome()
        self.show_versions()
        if focus is not None:
            target = self._widgets_of(focus)
            if target:
                target[0].focus()

    async def show_all(self) -> None:
        """Show the branch of a conversation just opened, newest first."""
        view = self.screen.view
        self.clear()
        branch = self._session.branch
        shown = branch[-HISTORY_WINDOW:]
        earlier = [turn.id for turn in branch[: len(branch) - len(shown)]]
        pending = [(turn, self._widgets(turn)) for turn in shown]
        self._entries = [(turn.id, widgets) for turn, widgets in pending]
        tail, older = pending[-HISTORY_FIRST_PAINT:], pending[:-HISTORY_FIRST_PAINT]
        if not pending:
            self.welcome()
        await view.mount_all([w for _, widgets in tail for w in widgets])
        self.show_versions()
        view.follow()
        painted = asyncio.Event()
        self.screen.call_after_refresh(painted.set)
        await painted.wait()  # the newest messages are on screen before older ones load
        self.screen.history_painted.set()
        while older:
            chunk, older = older[-HISTORY_CHUNK:], older[:-HISTORY_CHUNK]
            # A command may have changed the branch meanwhile: mount only what is
            # still part of it.
            present = {id(widgets) for _, widgets in self._entries}
            mount = [w for _, widgets in chunk if id(widgets) in present for w in widgets]
            if mount:
                await view.mount_all(mount, before=0)
            await asyncio.sleep(0)
        if self._entries and self._entries[0][0] == shown[0].id:
            self._earlier = earlier  # only now: what is shown is all mounted
        self._show_earlier_line()

    def _show_earlier_line(self) -> None:
        count = len(self._earlier)
        line = self._earlier_line
        if not count:
            if line is not None:
                line.remove()
                self._earlier_line = None
            return
        text = f"↑ {count:,} earlier message{'s' if count > 1 else ''} · scroll up or click"
        if line is None:
            line = self._earlier_line = EarlierMessages(text, classes="earlier-messages")
            self.screen.view.mount(line, before=0)
        else:
            line.update(text)

    @property
    def earlier(self) -> int:
        """How many of the branch's first messages are not mounted yet."""
        return len(self._earlier)

    def near_top(self) -> None:
        """The reader scrolled within a screen of the top: mount the next older chunk."""
        view = self.screen.view
        if self._earlier and view.scroll_y <= view.scrollable_content_region.height:
            self.show_earlier(HISTORY_CHUNK)

    def show_earlier(self, count: int = HISTORY_CHUNK) -> None:
        """Mount the ``count`` newest of the messages not mounted yet, above the others,
        keeping what is on screen where it is."""
        if not self._earlier:
            return
        view = self.screen.view
        ids, self._earlier = self._earlier[-count:], self._earlier[:-count]
        tree = self._session.tree
        entries = [(tid, self._widgets(tree[tid])) for tid in ids if tid in tree]
        widgets = [w for _, made in entries for w in made]
        self._entries[:0] = entries
        first = next((made[0] for _, made in self._entries[len(entries) :] if made), None)
        before_height = view.virtual_size.height
        offset = view.scroll_y
        if widgets:
            view.mount_all(widgets, before=first) if first is not None else view.mount_all(widgets)

        def keep_place() -> None:
            added = view.virtual_size.height - before_height
            if added > 0 and not view.following:
                view.scroll_to(y=offset + added, animate=False, immediate=True)

        view.call_after_refresh(keep_place)
        self._show_earlier_line()
        self.show_versions()

    def hide_from(self, turn_id: int) -> None:
        """Take turn ``turn_id`` and those after it off the screen (an edit)."""
        index = next((i for i, (tid, _) in enumerate(self._entries) if tid == turn_id), None)
        if index is not None:
            self._drop(index)
        if not self._entries:
            self.welcome()

    def _drop(self, keep: int) -> None:
        for _, widgets in self._entries[keep:]:
            for widget in widgets:
                widget.remove()
        del self._entries[keep:]

    def _widgets(self, turn: Turn) -> list[Widget]:
        """The widget showing one saved turn."""
        from tokentide.tui.widgets.messages import AssistantMessage, ErrorMessage, UserMessage

        if turn.role == "system":
            return []  # (an imported system row: the settings show the system prompt)
        if turn.role != "assistant":
            return [UserMessage(turn.content)]
        if turn.failed_empty:
            retry = self.screen.key_for("retry")
            return [ErrorMessage(turn.error or "The answer failed.", retry_key=retry)]
        status = "incomplete" if turn.status == "streaming" else turn.status
        return [
            AssistantMessage(
                turn.text,
                reasoning=turn.reasoning,
                tokens=turn.tokens,
                nodes=turn.nodes,
                tools=turn.tool_calls,
                label=turn.model or turn.profile,
                note=_saved_note(turn, status),
                status=status,
            )
        ]

    def show_versions(self) -> None:
        """``‹ n/m ›`` on every shown message that has other versions."""
        tree = self._session.tree
        for turn_id, widgets in self._entries:
            if not widgets or turn_id not in tree or not hasattr(widgets[0], "set_versions"):
                continue
            position, count = tree.siblings(turn_id)
            widgets[0].set_versions(f"‹ {position}/{count} ›" if count > 1 else "")

    # -- the answer streaming in -----------------------------------------------------------

    def add_live(self, turn_id: int, message: AssistantMessage) -> None:
        self._hide_welcome()
        self._entries.append((turn_id, [message]))
        self.screen.view.mount(message)

    def finished(self, turn_id: int, turn: Turn | None, message: AssistantMessage) -> None:
        """The live answer ended as ``turn`` (None: nothing kept, the message goes)."""
        index = next((i for i, (tid, _) in enumerate(self._entries) if tid == turn_id), None)
        if turn is None or turn.failed_empty:
            message.remove()
            if index is not None:
                if turn is None:
                    del self._entries[index]
                else:
                    self._entries[index][1].remove(message)
        self.show_versions()

    def error(self, error: TideError, *, keep_answer: bool = False) -> None:
        """An error note at the end; the failed prompt goes back into the composer
        unless an answer came or the user has started typing something else."""
        from tokentide.tui.widgets.messages import ErrorMessage

        screen = self.screen
        note = ErrorMessage(
            error
            if isinstance(error, BackendError)
            else BackendError(error.message, hint=error.hint),
            retry_key=screen.key_for("retry"),
        )
        if self._entries:
            self._entries[-1][1].append(note)
        self._hide_welcome()
        screen.view.mount(note)
        screen.view.follow()
        prompt = next((t.content for t in reversed(self._session.branch) if t.role == "user"), None)
        if prompt is not None and not keep_answer and not screen.composer.text.strip():
            screen.composer.set_prompt(prompt)

    # -- what the user points at -----------------------------------------------------------

    def _widgets_of(self, turn_id: int) -> list[Widget]:
        return next((widgets for tid, widgets in self._entries if tid == turn_id), [])

    def focused_turn(self) -> Turn | None:
        """The turn whose message has the focus, if any."""
        focused = self.screen.app.focused
        tree = self._session.tree
        for turn_id, widgets in self._entries:
            if focused in widgets and turn_id in tree:
                return tree[turn_id]
        return None

    def last_with_versions(self) -> Turn | None:
        """The last turn on screen that has other versions."""
        tree = self._session.tree
        for turn_id, _ in reversed(self._entries):
            if turn_id in tree and tree.siblings(turn_id)[1] > 1:
                return tree[turn_id]
        return None

    def target(self) -> Widget | None:
        """The focused message, else the last answer."""
        from tokentide.tui.widgets.messages import AssistantMessage, ErrorMessage, UserMessage

        focused = self.screen.app.focused
        if isinstance(focused, UserMessage | AssistantMessage | ErrorMessage):
            return focused
        answers = self.screen.view.query(AssistantMessage)
        return answers.last() if answers else None


def _saved_note(turn: Turn, status: str) -> str | None:
    """A reopened answer's footer, as it read live: finish reason (or status) · stats."""
    from tokentide.tui.widgets.status import describe_saved_stats

    head = status if status != "complete" else (turn.finish_reason or None)
    stats = describe_saved_stats(dict(turn.stats))
    parts = [part for part in (head, stats) if part]
    return " · ".join(parts) or None
