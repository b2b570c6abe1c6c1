"""The chat screen: conversation, composer, status line, sidebar; one worker per answer.

How one answer flows::

    Composer.Submitted ─▶ store the prompt ─▶ Generation(backend, request).start()
        ─▶ worker: async for batch in generation.batches():
                       message.add(deltas)        (one append per batch, never per token)
                       recorder.append(text)      (checkpointed at most once a second)
        ─▶ finished / stopped / error: widget marked, recorder.finish(status, timings)

Esc calls :meth:`Generation.cancel`, which cancels the producer task; the backend
unwinds through its ``async with`` blocks (the server sees the disconnect), the queue
ends and the worker finishes normally with the partial answer, marked "stopped".  The
composer gets the focus back at once, before any of that.  Quitting cancels the worker
instead; it cancels the generation and saves the partial answer on its way out.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeVar, assert_never

from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.reactive import reactive
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Footer, Header, Label

from tokentide.backends.base import Backend, GenerationRequest
from tokentide.backends.base import Message as ChatMessage
from tokentide.backends.events import (
    Finish,
    ReasoningDelta,
    Retrying,
    TextDelta,
    ToolCallRequested,
)
from tokentide.config.model import Profile, Settings
from tokentide.errors import BackendError, TideError
from tokentide.generation import Generation, RetryPolicy, State
from tokentide.meter import AnswerUse, Meter
from tokentide.sanitize import sanitize_for_clipboard, sanitize_title
from tokentide.tui.dialogs import ConfirmDialog, TextDialog
from tokentide.tui.plain import plain
from tokentide.tui.widgets.composer import Composer
from tokentide.tui.widgets.sidebar import ConversationItem, Sidebar
from tokentide.tui.widgets.status import StatusLine, describe_stats

if TYPE_CHECKING:
    from tokentide.backends.models import ModelInfo
    from tokentide.history.store import AnswerRecorder, HistoryStore, StoredMessage
    from tokentide.tui.widgets.messages import AssistantMessage

# The message widgets (and with them the Markdown renderer, markdown-it, Pygments) are
# imported when the first message is shown, not before the first frame.

__all__ = ["ANSWER_GROUP", "ChatScreen", "ConversationView", "Turn"]

_PartT = TypeVar("_PartT", bound=Widget)

ANSWER_GROUP = "answer"
"""Worker group of the answer being generated (one at a time)."""
HISTORY_FIRST_PAINT = 8
"""Saved messages mounted before the first paint of an opened conversation (a screenful
and more); older ones follow, HISTORY_CHUNK at a time, above them."""
HISTORY_CHUNK = 12

_STATUS_OF: dict[State, str] = {
    State.DONE: "complete",
    State.STOPPED: "stopped",
    State.ERROR: "error",
}


@dataclass(slots=True)
class Turn:
    """One message of the conversation as the next request will carry it."""

    role: Literal["user", "assistant"]
    content: str
    status: str = "complete"
    widgets: list[Widget] = field(default_factory=list)
    """What shows this turn (the message, and an error note after a failure)."""
    message_id: int | None = None
    """Its row in the history store (a failed empty answer has a row but no turn, so
    turn positions and stored positions differ)."""


def _settle_gc() -> None:
    from tokentide.tui.widgets.markdown_view import settle_gc

    settle_gc()


class FoldedHistory(Widget):
    """Stands in, at its exact height, for the turns folded away during a stream."""


class ConversationView(VerticalScroll):
    """The scrolling conversation.  Anchored: it follows the newest text while the user
    is at the bottom, at any token rate (Textual's compositor keeps an anchored view at
    the end on every reflow); scrolling up releases it, End or a new prompt restores it.

    While an answer streams and the view follows it, every turn more than a screen above
    the viewport is *folded*: hidden, with one :class:`FoldedHistory` spacer of the same
    height in its place.  The growing answer changes its height many times a second, and
    each change lays out the whole conversation; with 50 earlier answers that layout
    cost 10.5 ms instead of 4.6 ms, and layouts were in every worst event-loop stall
    (``docs/performance.md``).  Folded, a layout costs what a short conversation's does.
    The view's virtual height and the scroll position are unchanged, so nothing moves on
    screen; any scroll away from the end, a resize, or the end of the stream unfolds.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("end,ctrl+end", "follow", "Latest", id="follow", show=False),
    ]

    FOLD_MARGIN_SCREENS: ClassVar[float] = 1.0
    """Turns within this many viewport heights above the viewport stay unfolded."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._folded: list[Widget] = []
        self._spacer: FoldedHistory | None = None
        self._fold_width = 0

    @property
    def following(self) -> bool:
        return self.is_anchored and not self._anchor_released

    @property
    def folded(self) -> int:
        """How many widgets are folded away now."""
        return len(self._folded)

    def follow(self) -> None:
        self.anchor()
        self.scroll_end(animate=False, immediate=True)

    def action_follow(self) -> None:
        self.follow()

    def follow_stream(self) -> None:
        """:meth:`follow`, and :meth:`fold` once the layout has caught up (an answer is
        streaming into the view)."""
        self.follow()
        self.call_after_refresh(self.fold)

    def fold(self) -> None:
        """Fold the turns far above the viewport (only while following)."""
        if self._folded or not self.following or not self.is_attached:
            return
        limit = self.scroll_y - self.FOLD_MARGIN_SCREENS * self.scrollable_content_region.height
        flow = [
            child
            for child in self.children
            if child.display and child.styles.dock == "none" and child.styles.overlay == "none"
        ]
        count = 0
        for child in flow[:-1]:  # the last (streaming) widget always stays
            if child.virtual_region_with_margin.bottom > limit:
                break
            count += 1
        if count < 2:
            return  # not worth a spacer
        kept = flow[count]
        height = kept.virtual_region.y - kept.styles.margin.top
        if height <= 0:
            return
        spacer = FoldedHistory()
        spacer.styles.height = height
        self._spacer = spacer
        self._folded = flow[:count]
        self._fold_width = self.size.width
        self.mount(spacer, before=0)
        for child in self._folded:
            child.display = False

    def unfold(self) -> None:
        """Show the folded turns again, in the same frame as the spacer goes."""
        spacer, self._spacer = self._spacer, None
        folded, self._folded = self._folded, []
        if spacer is not None:
            spacer.display = False
            spacer.remove()
        for child in folded:
            child.display = True

    def release_anchor(self) -> None:
        self.unfold()  # the user scrolls away from the end: show everything
        super().release_anchor()

    def on_resize(self, event: events.Resize) -> None:
        # Sent for every change of the virtual height too; only a new width re-wraps the
        # folded turns (their heights were measured at the old one).
        if self._folded and event.size.width != self._fold_width:
            self.unfold()


class NewTextBadge(Label):
    """ "↓ new text" shown while the user has scrolled away from the end."""

    def on_click(self) -> None:
        self.post_message(ChatScreen.FollowRequested())


class ChatScreen(Screen[None]):
    """See the module docstring."""

    AUTO_FOCUS = "#composer"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "stop", "Stop", id="stop"),
        # Before the composer's and the screen's copy: stops an answer first (issue 11).
        Binding("ctrl+c", "interrupt", "Stop/copy", id="interrupt", show=False, priority=True),
        Binding("ctrl+r", "retry", "Retry/regenerate", id="retry"),
        Binding("ctrl+l", "edit_last", "Edit last", id="edit_last"),
        Binding("ctrl+n", "new_conversation", "New", id="new_conversation"),
        Binding("ctrl+b", "toggle_sidebar", "Conversations", id="toggle_sidebar"),
        Binding("ctrl+o", "copy", "Copy", id="copy"),
        # priority: the composer would otherwise take alt+o as the letter "o".
        Binding("alt+o", "copy_code", "Copy code", id="copy_code", show=False, priority=True),
        Binding("ctrl+t", "token_details", "Token details", id="token_details", show=False),
        Binding("f2", "switch_model", "Model", id="switch_model", show=False),
        Binding("ctrl+end", "follow", "Latest", id="follow_latest", show=False),
    ]

    generating: reactive[bool] = reactive(False)

    class FollowRequested(Message):
        pass

    def __init__(
        self,
        settings: Settings,
        profile: Profile,
        *,
        store: HistoryStore | None,
        conversation_id: str | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        super().__init__(id="chat")
        self.clock = clock
        """Timing source of every generation (tests freeze it for snapshots)."""
        self.settings = settings
        self.profile = profile
        self.store = store
        self.conversation_id = conversation_id
        self.turns: list[Turn] = []
        self.backend: Backend | None = None
        self.generation: Generation | None = None
        self._failed_prompt: str | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self._search = ""
        self._recorder: AnswerRecorder | None = None
        self._history_waiting = False
        self._parts: dict[str, Widget] = {}
        self.meter = Meter()
        """Prompt tokens, context and cost of this conversation (:mod:`tokentide.meter`)."""
        self._windows: dict[tuple[str, str | None, str | None], int | None] = {}
        self.history_painted = asyncio.Event()
        """Set once an opened conversation's newest messages have been painted."""

    # -- layout ---------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False, icon="≋")
        with Horizontal(id="body"):
            yield Sidebar(id="sidebar")
            with Vertical(id="main"):
                yield ConversationView(id="conversation")
                yield NewTextBadge("↓ new text · End", id="new-text")
                yield StatusLine(id="status")
                yield Composer(id="composer")
        yield Footer()

    # The parts are found once and kept: they are never replaced, and a generation
    # ending while the app quits (its widgets already gone from the DOM) must still be
    # able to reach them.

    @property
    def view(self) -> ConversationView:
        return self._part("#conversation", ConversationView)

    @property
    def composer(self) -> Composer:
        return self._part("#composer", Composer)

    @property
    def status(self) -> StatusLine:
        return self._part("#status", StatusLine)

    @property
    def sidebar(self) -> Sidebar:
        return self._part("#sidebar", Sidebar)

    def _part(self, selector: str, kind: type[_PartT]) -> _PartT:
        part = self._parts.get(selector)
        if part is None:
            part = self._parts[selector] = self.query_one(selector, kind)
        assert isinstance(part, kind)
        return part

    def on_mount(self) -> None:
        self.title = "tokentide"
        self._show_profile()
        self.view.anchor()
        self.query_one("#new-text").display = False
        self.sidebar.display = False
        # No timer runs while the chat is idle (issue 17): the "new text" badge follows
        # scrolling and content changes, and polls only while an answer streams; the
        # history checkpoint ticks only while an answer is recorded or writes wait.
        self._follow_timer = self.set_interval(0.2, self._check_following, pause=True)
        self._checkpoint_timer = self.set_interval(0.5, self._checkpoint, pause=True)
        self.watch(self.view, "scroll_y", self._scrolled, init=False)
        self.watch(self.view, "virtual_size", self._scrolled, init=False)
        if self.conversation_id is not None:
            self.open_conversation(self.conversation_id)

    async def on_unmount(self) -> None:
        await self.close_backend()

    def _model_label(self) -> str:
        profile = self.profile
        if profile.model:
            return profile.model
        if profile.api == "llamacpp":
            path = profile.options.get("model_path")
            return str(path).rsplit("/", 1)[-1] if path else "SmolLM2-135M-Instruct (built in)"
        if profile.api == "local":
            return str(profile.options.get("target", "local function"))
        return "the server's default model"

    def _recorded_model(self) -> str | None:
        """The model an answer is titled and saved with before the server names it: the
        profile's, or the in-process backend's own (a file, a function)."""
        if self.profile.model or self.profile.api in ("llamacpp", "local"):
            return self._model_label()
        return None

    def _show_profile(self) -> None:
        profile = self.profile
        model = self._model_label()
        self.sub_title = sanitize_title(f"{profile.name} · {profile.api} · {model}", limit=100)
        if not self.turns:
            self._show_welcome()

    def _show_welcome(self) -> None:
        """The first screen: who answers, the keys, and how to point tide elsewhere."""
        from textual.widgets import Static

        def key(binding_id: str) -> str:
            return {"escape": "Esc"}.get(name := self._key_for(binding_id), name)

        text = (
            f"{self._model_label()} answers here (profile {self.profile.name}, "
            f"{self.profile.api}).\n"
            f"Enter sends · ctrl+j new line · {key('external_editor')} your editor · "
            f"{key('stop')} or ctrl+c stops · "
            f"{key('retry')} regenerates · {key('edit_last')} edits the last prompt · "
            f"{key('toggle_sidebar')} conversations · ctrl+p every command · ctrl+q quits\n"
            "Another server: tide chat --api openai --url http://HOST:PORT/v1, or a "
            "profile in the config file (tide config path; tide config init writes one)."
        )
        existing = self.view.query("#welcome")
        if existing:
            existing.first(Static).update(plain(text))
        else:
            self.view.mount(Static(plain(text), id="welcome", markup=False))

    def _hide_welcome(self) -> None:
        for widget in self.view.query("#welcome"):
            widget.remove()

    def _checkpoint(self) -> None:
        """Bound the text a crash can lose in time too, when tokens pause; retry the
        history writes that wait for another process's lock."""
        recorder = self._recorder
        if recorder is not None and not recorder.finished:
            recorder.poll()
        store = self.store
        if store is not None and (store.pending or self._history_waiting):
            try:
                store.flush_pending()
            except TideError as error:
                self.notify(str(error), title="History", severity="error")
            self._report_history_wait(store.pending)
        self._arm_checkpoint()

    def _arm_checkpoint(self) -> None:
        """Tick while an answer is being recorded or history writes wait; else sleep."""
        store = self.store
        recording = self._recorder is not None and not self._recorder.finished
        waiting = store is not None and bool(store.pending or self._history_waiting)
        if recording or waiting:
            self._checkpoint_timer.resume()
        else:
            self._checkpoint_timer.pause()

    def _scrolled(self) -> None:
        if not self.generating:  # while streaming the timer checks at 5 Hz
            self._check_following()

    def _report_history_wait(self, waiting: int) -> None:
        """Say once when writes start waiting, and once when they have all landed."""
        if waiting and not self._history_waiting:
            self.notify(
                "Another process holds the history database: what you write and receive "
                "is kept in memory and saved as soon as it is free.",
                title="History busy",
                severity="warning",
                timeout=8,
            )
        elif not waiting and self._history_waiting:
            self.notify("Everything that waited is saved now.", title="History")
        self._history_waiting = waiting > 0

    def _check_following(self) -> None:
        view = self.view
        away = not view.following and view.max_scroll_y > 0 and not view.is_vertical_scroll_end
        badge = self._part("#new-text", NewTextBadge)
        if badge.display != away:
            badge.display = away
        if away:
            badge.update("↓ new text · End" if self.generating else "↓ latest · End")

    def watch_generating(self, generating: bool) -> None:
        # (No CSS class for this: a class on the screen restyles every widget in it,
        # ~40 ms with a few answers on screen, at the start and at the end of each.)
        self.composer.answer_streaming = generating
        if generating:
            self._follow_timer.resume()
        else:
            self._follow_timer.pause()
            self._check_following()
            self._idle.set()
        self._arm_checkpoint()
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "stop":
            return self.generating
        return True

    # -- the backend ----------------------------------------------------------------------

    def ensure_backend(self) -> Backend:
        if self.backend is None:
            from tokentide.backends.registry import create_backend

            self.backend = create_backend(self.profile)
        return self.backend

    async def close_backend(self) -> None:
        """Stop any answer, wait for its stream to close, then close the backend."""
        generation = self.generation
        if generation is not None:
            generation.cancel()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(generation.wait()), 2.0)
        backend, self.backend = self.backend, None
        if backend is not None:
            await backend.aclose()

    def switch_profile(self, name: str) -> None:
        from tokentide.config.load import resolve_profile

        try:
            profile = resolve_profile(self.settings, name)  # the built-in local included
        except TideError as error:
            self.notify(str(error), severity="error")
            return
        if self._use_profile(profile, f"Profile {name}"):
            self.notify(f"Now using profile {name}.", timeout=3)

    async def new_from_template(self, name: str) -> None:
        """A new, empty conversation with template ``name`` applied to its profile."""
        from tokentide.config.templates import start_from_template

        try:
            start = start_from_template(self.settings, name)
        except TideError as error:
            self.notify(str(error), title=f"Template {name}", severity="error")
            return
        await self._wait_idle()
        if self._use_profile(start.profile, f"Template {name}"):
            await self.action_new_conversation()
            self.notify(f"New conversation from template {name}.", timeout=3)

    def action_switch_model(self) -> None:
        """Pick one of the server's models for this chat (listed live)."""
        from tokentide.backends.models import can_switch
        from tokentide.tui.model_picker import ModelPicker

        if not can_switch(self.profile):
            self.notify(
                f"Profile {self.profile.name} ({self.profile.api}) runs one model; "
                "switch profile (ctrl+p) to use another.",
                title="Switch model",
                severity="warning",
            )
            return
        self.app.push_screen(ModelPicker(self.profile), self._model_chosen)

    def _model_chosen(self, info: ModelInfo | None) -> None:
        from tokentide.backends.models import with_model

        if info is None or info.id == self.profile.model:
            return
        try:
            profile = with_model(self.profile, info)
        except TideError as error:
            self.notify(str(error), title="Switch model", severity="error")
            return
        if info.context_window:
            self._windows[(profile.api, profile.url, profile.model)] = info.context_window
        if self._use_profile(profile, "Switch model"):
            self.notify(f"Now using model {info.label()}.", timeout=3)

    def _use_profile(self, profile: Profile, title: str) -> bool:
        """Answer with ``profile`` from now on (a new backend; the old one closes once
        idle).  False, with the reason shown, when its backend cannot be built."""
        from tokentide.backends.registry import create_backend

        try:
            backend = create_backend(profile)
        except TideError as error:
            self.notify(str(error), title=title, severity="error")
            return False
        self.action_stop()
        old, self.backend, self.profile = self.backend, backend, profile
        self._show_profile()
        if old is not None:
            self._close_later(old)
        return True

    @work(group="close-backend")
    async def _close_later(self, backend: Backend) -> None:
        await self._idle.wait()
        await backend.aclose()

    # -- sending --------------------------------------------------------------------------

    @on(Composer.Submitted)
    async def _submitted(self, event: Composer.Submitted) -> None:
        event.stop()
        if self.generating:
            if self.generation is not None and self.generation.state.finished:
                await self._idle.wait()
            else:
                self.notify(
                    "Still answering. Esc stops it.",
                    severity="warning",
                    timeout=3,
                )
                return
        text = event.text
        composer = self.composer
        composer.remember(text)
        composer.clear_prompt()
        last = self.turns[-1] if self.turns else None
        if last is not None and last.role == "user" and last.content == text:
            # The prompt that failed, sent again: retry it rather than repeat it.
            self._drop_error_notes(last)
        else:
            self.send(text)
            return
        self.answer()

    def send(self, text: str) -> None:
        """Store and show a new prompt, then ask for the answer."""
        from tokentide.tui.widgets.messages import UserMessage

        message_id: int | None = None
        try:
            message_id = self._store_user(text)
        except TideError as error:
            self.notify(str(error), title="History", severity="error")
        widget = UserMessage(text)
        self._hide_welcome()
        self.turns.append(Turn("user", text, widgets=[widget], message_id=message_id))
        self.view.mount(widget)
        self.answer()

    def request_messages(self) -> list[ChatMessage]:
        messages: list[ChatMessage] = []
        if self.profile.system:
            messages.append(ChatMessage("system", self.profile.system))
        for turn in self.turns:
            if turn.role == "assistant" and not turn.content:
                continue
            messages.append(ChatMessage(turn.role, turn.content))
        return messages

    def answer(self) -> None:
        """Ask for an answer to the conversation so far (ending with a user turn)."""
        from tokentide.tui.widgets.messages import AssistantMessage

        try:
            backend = self.ensure_backend()
        except TideError as error:
            self._show_error(error)
            return
        profile = self.profile
        request = GenerationRequest(messages=tuple(self.request_messages()), model=profile.model)
        generation = Generation(
            backend,
            request,
            mode="stream",
            deadlines=profile.deadlines,
            retry=RetryPolicy(max_retries=profile.max_retries),
            clock=self.clock,
        )
        message = AssistantMessage(streaming=True, label=self._recorded_model() or profile.name)
        message.set_status("streaming")
        recorder = self._begin_answer()
        self._recorder = recorder
        self.generation = generation
        self.generating = True
        self._idle.clear()
        self.view.mount(message)
        self.view.follow_stream()
        self.status.track(generation, self.clock)
        generation.on_state = lambda _state: self.status.refresh_now()
        generation.start()
        self._consume(generation, message, recorder)

    @work(exclusive=True, group=ANSWER_GROUP)
    async def _consume(
        self, generation: Generation, message: AssistantMessage, recorder: AnswerRecorder | None
    ) -> None:
        try:
            async for batch in generation.batches():
                deltas: list[TextDelta] = []
                thoughts: list[str] = []
                for event in batch:
                    match event:
                        case TextDelta():
                            deltas.append(event)
                        case Retrying():
                            self.status.retrying(event)
                        case ReasoningDelta():
                            thoughts.append(event.text)
                        case Finish():
                            pass
                        case ToolCallRequested():
                            message.add_notice(_tool_call_notice(event))
                        case _:
                            assert_never(event)
                if thoughts:
                    thought = "".join(thoughts)
                    message.add_reasoning(thought)
                    if recorder is not None:
                        recorder.append_reasoning(thought)
                if deltas:
                    message.add(deltas)
                    if recorder is not None:
                        recorder.append("".join(d.text for d in deltas if not d.special))
        except BackendError:
            pass  # generation.error holds it; shown below
        except asyncio.CancelledError:
            # The app is quitting (or the worker was replaced): stop, save, and let the
            # backend close its response before the loop goes away.
            generation.cancel()
            self._show_end(generation, message)
            self._finish(generation, message, recorder)
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(generation.wait()), 2.0)
            raise
        # The last tokens first: the answer's final state is painted, then the rest of
        # the end (saving, status, sidebar, garbage collection) runs (issue 17).
        self._show_end(generation, message)
        await self._painted()
        self._finish(generation, message, recorder)

    async def _painted(self) -> None:
        """Return once the screen has been refreshed (or after 0.5 s, if nothing is
        painting: a suspended app, a screen not shown)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.wait_for_refresh(), 0.5)

    def _end_state(self, generation: Generation) -> State:
        state = generation.state
        # the worker was cancelled before the producer ended
        return state if state.finished else State.STOPPED

    def _show_end(self, generation: Generation, message: AssistantMessage) -> None:
        """The answer's final text and footer: only what must be painted at the end."""
        state = self._end_state(generation)
        note = {
            State.DONE: f"{(generation.finish.reason if generation.finish else None) or 'done'}",
            State.STOPPED: "stopped",
            State.ERROR: "error",
        }[state]
        figures = describe_stats(generation.stats)
        message.finish(_STATUS_OF[state], note=f"{note} · {figures}" if figures else note)

    def _finish(
        self, generation: Generation, message: AssistantMessage, recorder: AnswerRecorder | None
    ) -> None:
        state = self._end_state(generation)
        status = _STATUS_OF[state]
        text = message.source
        self.view.unfold()
        use = AnswerUse.of(generation.finish.usage if generation.finish else None, self.profile)
        self.meter.add(use)
        served = generation.finish.model if generation.finish else None
        if served and not self.profile.model:
            message.border_title = plain(served)  # the server's default, as it named it
        self.call_after_refresh(_settle_gc)  # at rest: never while a stream runs
        if recorder is not None and status == "stopped" and not text and not message.reasoning:
            # Stopped (or quit) before anything arrived: keep the prompt, not an empty
            # "stopped" answer that every reopening would show.
            try:
                if self.store is not None:
                    self.store.delete_message(recorder.message_id)
            except TideError as error:
                self.notify(str(error), title="History", severity="error")
            recorder = None
        if recorder is not None:
            try:
                recorder.finish(
                    status=status,
                    text=text,
                    reasoning=message.reasoning,
                    details=message.details,
                    stats={**generation.stats.as_dict(), **use.as_dict()},
                    finish_reason=generation.finish.reason if generation.finish else None,
                    error=generation.error.message if generation.error else None,
                    model=served,
                )
            except TideError as error:
                self.notify(str(error), title="History", severity="error")
        self._recorder = None
        widgets: list[Widget] = [message]
        if text or state is not State.ERROR:
            message_id = recorder.message_id if recorder is not None else None
            self.turns.append(
                Turn("assistant", text, status, widgets=widgets, message_id=message_id)
            )
        else:
            message.remove()
        if state is State.ERROR and generation.error is not None:
            self._show_error(generation.error, keep_answer=bool(text))
        self._show_use()  # redraws the status line with the answer's end
        self.generation = None
        self.generating = False
        self._refresh_sidebar()

    # -- context and cost -----------------------------------------------------------------

    def _window_key(self) -> tuple[str, str | None, str | None]:
        return (self.profile.api, self.profile.url, self.profile.model)

    def _window(self) -> int | None:
        """The model's context window: the profile's ``context_window``, else what the
        server's model list said (learnt once per server and model)."""
        return self.profile.context_window or self._windows.get(self._window_key())

    def _show_use(self) -> None:
        self.status.show_use(self.meter.line(self._window()))
        key = self._window_key()
        learn = self.meter.last.prompt_tokens is not None and self._window() is None
        if learn and key not in self._windows:
            self._windows[key] = None  # asked once, whatever the answer
            self._learn_window(self.profile, key)

    @work(group="context-window")
    async def _learn_window(
        self, profile: Profile, key: tuple[str, str | None, str | None]
    ) -> None:
        from tokentide.backends.models import configured_model, list_models

        try:
            models = await list_models(profile, timeout=10.0)
        except TideError:
            return  # no list, no window: the status line shows the context used alone
        info = configured_model(models, profile) or (models[0] if len(models) == 1 else None)
        if info is None or not info.context_window:
            return
        self._windows[key] = info.context_window
        if self._window_key() == key and not self.generating:
            self.status.show_use(self.meter.line(self._window()))

    def _show_error(self, error: TideError, *, keep_answer: bool = False) -> None:
        from tokentide.tui.widgets.messages import ErrorMessage

        note = ErrorMessage(
            error
            if isinstance(error, BackendError)
            else BackendError(error.message, hint=error.hint),
            retry_key=self._key_for("retry"),
        )
        if self.turns:
            self.turns[-1].widgets.append(note)
        self.view.mount(note)
        self.view.follow()
        # Nothing the user typed is lost: the failed prompt goes back into the composer
        # unless they have started typing something else.
        last_prompt = next((t.content for t in reversed(self.turns) if t.role == "user"), None)
        if last_prompt is not None and not keep_answer and not self.composer.text.strip():
            self.composer.set_prompt(last_prompt)

    def _key_for(self, binding_id: str) -> str:
        keymap = getattr(self.app, "_keymap", {})
        keys = keymap.get(binding_id)
        if keys:
            return str(keys).split(",")[0]
        for binding in [*self.BINDINGS, *Composer.BINDINGS]:
            if isinstance(binding, Binding) and binding.id == binding_id:
                return binding.key.split(",")[0]
        return binding_id

    def _drop_error_notes(self, turn: Turn) -> None:
        for widget in turn.widgets[1:]:
            widget.remove()
        del turn.widgets[1:]

    # -- stopping, retrying, editing ------------------------------------------------------

    def action_interrupt(self) -> None:
        """ctrl+c, as in every terminal chat: stop the answer while one streams (exactly
        as Esc); otherwise copy what is selected (the prompt's selection, else the mouse
        selection on screen); with nothing to stop or copy, say how to quit."""
        if self.generating:
            self.action_stop()
        elif self.composer.selected_text:
            self.composer.action_copy()
        elif self.get_selected_text():
            self.action_copy_text()
        else:
            self.app.action_help_quit()

    def action_stop(self) -> None:
        generation = self.generation
        if generation is not None and not generation.state.finished:
            generation.cancel()
        self.composer.focus()

    async def _wait_idle(self) -> None:
        self.action_stop()
        await self._idle.wait()

    async def action_retry(self) -> None:
        """Retry after an error, or regenerate the last answer."""
        if self.generating:
            self.notify(
                "Still answering. Esc stops it.",
                severity="warning",
                timeout=3,
            )
            return
        if not self.turns:
            return
        last = self.turns[-1]
        if last.role == "assistant":
            self._remove_turns(len(self.turns) - 1)
            last = self.turns[-1]
        if last.role != "user":
            return
        self._drop_error_notes(last)
        if self.composer.text == last.content:
            self.composer.clear_prompt()
        self.answer()

    async def action_edit_last(self) -> None:
        """Take the last prompt (and its answer) back into the composer."""
        await self._wait_idle()
        index = next(
            (i for i in range(len(self.turns) - 1, -1, -1) if self.turns[i].role == "user"), None
        )
        if index is None:
            self.notify("Nothing to edit yet.", timeout=3)
            return
        prompt = self.turns[index].content
        composer = self.composer
        current = composer.prompt
        if current.strip() and current != prompt:
            composer.remember(current)  # what was being typed stays reachable with up
        self._remove_turns(index)
        self.status.clear()  # it described the answer just taken away
        if not self.turns:
            self._show_welcome()
        composer.set_prompt(prompt)
        composer.focus()

    def _remove_turns(self, index: int) -> None:
        """Forget turns ``index`` and after, on screen and in the store."""
        removed = self.turns[index:]
        for turn in removed:
            for widget in turn.widgets:
                widget.remove()
        del self.turns[index:]
        first = next((turn.message_id for turn in removed if turn.message_id is not None), None)
        if self.store is not None and self.conversation_id is not None and first is not None:
            try:
                self.store.truncate_after(self.conversation_id, first, inclusive=True)
            except TideError as error:
                self.notify(str(error), title="History", severity="error")
            self._arm_checkpoint()

    # -- copying, token details, following -------------------------------------------------

    def _target(self) -> Widget | None:
        from tokentide.tui.widgets.messages import AssistantMessage, ErrorMessage, UserMessage

        focused = self.app.focused
        if isinstance(focused, UserMessage | AssistantMessage | ErrorMessage):
            return focused
        answers = self.view.query(AssistantMessage)
        return answers.last() if answers else None

    def action_copy(self) -> None:
        from tokentide.tui.widgets.messages import AssistantMessage, ErrorMessage, UserMessage

        target = self._target()
        if target is None:
            self.notify("Nothing to copy yet.", timeout=3)
            return
        if isinstance(target, ErrorMessage):
            text = target.error_text
        else:
            assert isinstance(target, UserMessage | AssistantMessage)
            text = target.source
        self._copy(text, "message" if self.app.focused is target else "last answer")

    def action_copy_code(self) -> None:
        from tokentide.tui.widgets.messages import AssistantMessage, last_code_block

        target = self._target()
        code = last_code_block(target.source) if isinstance(target, AssistantMessage) else None
        if code is None:
            self.notify("No code block in that answer.", timeout=3)
            return
        self._copy(code, "code block")

    def _copy(self, text: str, what: str) -> None:
        clean = sanitize_for_clipboard(text)
        self.app.copy_to_clipboard(clean)
        self.notify(f"Copied the {what} ({len(clean):,} characters).", timeout=3)

    def action_token_details(self) -> None:
        from tokentide.tui.widgets.messages import AssistantMessage

        target = self._target()
        if not isinstance(target, AssistantMessage) or not target.toggle_details():
            self.notify(
                "No token details for that answer (the server sent no logprobs).",
                timeout=4,
            )

    def action_follow(self) -> None:
        if self.generating:
            self.view.follow_stream()
        else:
            self.view.follow()
        self._check_following()

    @on(FollowRequested)
    def _follow_requested(self) -> None:
        self.action_follow()

    # -- conversations --------------------------------------------------------------------

    def _store_user(self, text: str) -> int | None:
        store = self.store
        if store is None:
            return None
        if self.conversation_id is None:
            self.conversation_id = store.create_conversation(title=text, profile=self.profile.name)
        return store.add_message(self.conversation_id, "user", text)

    def _begin_answer(self) -> AnswerRecorder | None:
        if self.store is None or self.conversation_id is None:
            return None
        try:
            return self.store.record_answer(
                self.conversation_id, profile=self.profile.name, model=self._recorded_model()
            )
        except TideError as error:
            self.notify(str(error), title="History", severity="error")
            return None

    async def action_new_conversation(self) -> None:
        await self._wait_idle()
        self._clear()
        self._show_welcome()
        self.conversation_id = None
        self.composer.focus()
        self._refresh_sidebar()

    def _clear(self) -> None:
        self.view.unfold()
        self.meter.reset()
        self.turns.clear()
        self.view.remove_children()
        self.status.clear()

    @work(exclusive=True, group="open")
    async def open_conversation(self, conversation_id: str) -> None:
        """Show a saved conversation (finished messages render cheaply)."""
        await self._wait_idle()
        if self.store is None:
            return
        try:
            conversation = self.store.load(conversation_id)
        except TideError as error:
            self.notify(str(error), title="History", severity="error")
            return
        self._clear()
        self.history_painted.clear()
        self.conversation_id = conversation_id
        # Turns first (cheap), so a request can carry the whole conversation at once;
        # widgets are built newest first: the screenful at the end is mounted and
        # painted straight away, older messages are added above it in small chunks.
        pending: list[tuple[Turn, StoredMessage]] = []
        for saved in conversation.messages:
            if saved.role == "user":
                turn = Turn("user", saved.content, message_id=saved.id)
                self.composer.remember(saved.content)
            elif saved.role == "assistant":
                status = saved.status or "complete"
                if status == "streaming":  # another tide process is writing it
                    status = "incomplete"
                if status == "error" and not saved.content and self.turns:
                    pending.append((self.turns[-1], saved))  # an error note on the prompt
                    continue
                turn = Turn("assistant", saved.content, status, message_id=saved.id)
                self.meter.add(AnswerUse.from_saved(saved.stats))
            else:
                continue
            self.turns.append(turn)
            pending.append((turn, saved))
        self.status.show_use(self.meter.line(self._window()))
        view = self.view
        tail, older = pending[-HISTORY_FIRST_PAINT:], pending[:-HISTORY_FIRST_PAINT]
        painted = asyncio.Event()
        await view.mount_all([self._saved_widget(turn, saved) for turn, saved in tail])
        view.follow()
        self._refresh_sidebar()
        self.call_after_refresh(painted.set)
        await painted.wait()  # the newest messages are on screen before older ones load
        self.history_painted.set()
        while older:
            chunk, older = older[-HISTORY_CHUNK:], older[:-HISTORY_CHUNK]
            widgets = [self._saved_widget(turn, saved) for turn, saved in chunk]
            await view.mount_all(widgets, before=0)
            await asyncio.sleep(0)
        self.call_after_refresh(_settle_gc)

    def _saved_widget(self, turn: Turn, saved: StoredMessage) -> Widget:
        """The widget showing one saved message (registered on its turn)."""
        from tokentide.tui.widgets.messages import AssistantMessage, ErrorMessage, UserMessage

        widget: Widget
        if saved.role == "user":
            widget = UserMessage(saved.content)
        elif turn.role == "user":  # a failed answer: an error note under the prompt
            widget = ErrorMessage(
                saved.error or "The answer failed.", retry_key=self._key_for("retry")
            )
        else:
            widget = AssistantMessage.saved(
                saved.content,
                reasoning=saved.reasoning,
                tokens=saved.tokens,
                nodes=saved.nodes,
                label=saved.model or saved.profile,
                note=_saved_note(saved, turn.status),
                status=turn.status,
            )
        if saved.role == "user":
            turn.widgets.insert(0, widget)
        else:
            turn.widgets.append(widget)
        return widget

    async def action_toggle_sidebar(self) -> None:
        sidebar = self.sidebar
        sidebar.display = not sidebar.display
        if sidebar.display:
            await sidebar.build()
            self._refresh_sidebar()
            sidebar.query_one("#conversations").focus()
        else:
            self.composer.focus()

    def _refresh_sidebar(self) -> None:
        """Show the store's conversations (after every change to them) and, if writes
        are waiting for another process's lock, have the checkpoint retry them."""
        self._arm_checkpoint()
        if self.store is None or not self.sidebar.display or not self.sidebar.built:
            return
        try:
            conversations = self.store.list_conversations(search=self._search or None, limit=200)
        except TideError as error:
            self.notify(str(error), title="History", severity="error")
            return
        self.sidebar.show(_items(conversations), current=self.conversation_id)

    @on(Sidebar.Opened)
    def _sidebar_opened(self, event: Sidebar.Opened) -> None:
        self.open_conversation(event.conversation_id)
        self.composer.focus()

    @on(Sidebar.Search)
    def _sidebar_search(self, event: Sidebar.Search) -> None:
        self._search = event.query.strip()
        self._refresh_sidebar()

    @on(Sidebar.RenameRequested)
    def _sidebar_rename(self, event: Sidebar.RenameRequested) -> None:
        self.rename_conversation(event.conversation_id)

    @on(Sidebar.DeleteRequested)
    def _sidebar_delete(self, event: Sidebar.DeleteRequested) -> None:
        self.delete_conversation(event.conversation_id)

    def _title_of(self, conversation_id: str) -> str:
        for item in self.sidebar.items:
            if item.id == conversation_id:
                return item.title
        return ""

    @work(group="dialog")
    async def rename_conversation(self, conversation_id: str | None = None) -> None:
        conversation_id = conversation_id or self.conversation_id
        if conversation_id is None or self.store is None:
            self.notify("No conversation to rename yet.", timeout=3)
            return
        title = await self.app.push_screen_wait(
            TextDialog("New title", sanitize_title(self._title_of(conversation_id)))
        )
        if title:
            self.store.rename(conversation_id, title)
            self._refresh_sidebar()

    @work(group="dialog")
    async def delete_conversation(self, conversation_id: str | None = None) -> None:
        conversation_id = conversation_id or self.conversation_id
        if conversation_id is None or self.store is None:
            self.notify("No conversation to delete yet.", timeout=3)
            return
        title = sanitize_title(self._title_of(conversation_id) or "this conversation", limit=60)
        if not await self.app.push_screen_wait(ConfirmDialog(f"Delete “{title}”?")):
            return
        if conversation_id == self.conversation_id:
            await self._wait_idle()
            self._clear()
            self.conversation_id = None
        self.store.delete(conversation_id)
        self._refresh_sidebar()


def _items(conversations: Iterable[Any]) -> list[ConversationItem]:
    items = []
    for conversation in conversations:
        items.append(ConversationItem(str(conversation.id), conversation.title or ""))
    return items


def _tool_call_notice(call: ToolCallRequested) -> str:
    arguments = call.arguments if len(call.arguments) <= 200 else call.arguments[:199] + "…"
    return f"The model asked to call {call.name}({arguments}); tools are off, so it was not run."


def _saved_note(saved: StoredMessage, status: str) -> str | None:
    """A reopened answer's footer, as it read live: finish reason (or status) · stats."""
    from tokentide.tui.widgets.status import describe_saved_stats

    head = status if status != "complete" else (saved.finish_reason or None)
    stats = describe_saved_stats(saved.stats)
    parts = [part for part in (head, stats) if part]
    return " · ".join(parts) or None
