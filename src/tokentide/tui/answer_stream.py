"""One answer painted as it streams: the chat screen's worker that drains the session's
:class:`~tokentide.chat.live.LiveAnswer` into an answer widget.

Each batch is one append to the widget (never one per token).  At the end the answer's
final state is painted first, and only then saved (by the session) with the status
line, the sidebar and the garbage collector's pass, so nothing proportional to the
answer's length delays its last frame (issue 17).  Cancelled (the app quits), the
worker stops the generation, saves the partial answer and lets the backend close its
response before the loop goes away.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Final, assert_never

from tokentide.backends.events import Finish, ReasoningDelta, Retrying, TextDelta, ToolCallRequested
from tokentide.chat.tool_use import ToolFinished, ToolsStopped, ToolStarted
from tokentide.errors import TideError, UsageError
from tokentide.generation import State
from tokentide.tui.widgets.status import describe_stats

if TYPE_CHECKING:
    from tokentide.chat.live import LiveAnswer
    from tokentide.tui.chat_screen import ChatScreen
    from tokentide.tui.widgets.messages import AssistantMessage

__all__ = ["ANSWER_GROUP", "AnswerStream"]

ANSWER_GROUP: Final = "answer"
"""Worker group of the answer being generated (one at a time)."""


class AnswerStream:
    def __init__(self, screen: ChatScreen) -> None:
        self.screen = screen

    def start(self, begin: Callable[[], LiveAnswer]) -> None:
        """Start an answer (``begin`` is a session command) and stream it into view."""
        from tokentide.tui.widgets.messages import AssistantMessage

        screen = self.screen
        try:
            live = begin()
        except UsageError as error:  # refused before anything was sent
            screen.notify(str(error), severity="warning", timeout=6)
            return
        except TideError as error:
            screen.shown.render()
            screen.shown.error(error)
            return
        screen.shown.render(skip=live.id)
        label = live.placeholder.model or live.profile.name
        message = AssistantMessage(streaming=True, label=label)
        if live.continued is not None:
            message.add([TextDelta(live.continued.text)])
        message.set_status("streaming")
        screen.generating = True
        screen.shown.add_live(live.id, message)
        screen.view.follow_stream()
        screen.status.track(live.generation, screen.session.clock)
        live.generation.on_state = lambda _state: screen.status.refresh_now()
        screen.run_worker(self._consume(live, message), group=ANSWER_GROUP, exclusive=True)

    async def _consume(self, live: LiveAnswer, message: AssistantMessage) -> None:
        status = self.screen.status
        tracked = live.generation
        paragraph = False
        try:
            async for batch in live.batches():
                if live.generation is not tracked:  # the next round, after its tools
                    tracked = live.generation
                    status.track(tracked, self.screen.session.clock)
                    tracked.on_state = lambda _state: status.refresh_now()
                deltas: list[TextDelta] = []
                thoughts: list[str] = []
                for event in batch:
                    match event:
                        case TextDelta():
                            deltas.append(event)
                        case Retrying():
                            status.retrying(event)
                        case ReasoningDelta():
                            thoughts.append(event.text)
                        case Finish():
                            pass
                        case ToolCallRequested():
                            if live.tools is None:  # with tools, its block comes next
                                message.add_notice(_tool_call_notice(event))
                        case ToolStarted():
                            message.add_tool(event.call, event.source, event.denied)
                        case ToolFinished():
                            message.tool_finished(event.call, event.result)
                            paragraph = True  # the text after a round starts a paragraph
                        case ToolsStopped():
                            message.add_notice(event.note)
                        case _:
                            assert_never(event)
                if thoughts:
                    message.add_reasoning("".join(thoughts))
                if deltas:
                    if paragraph:
                        paragraph = False
                        if message.main.source:  # as the saved answer's text has it
                            deltas.insert(0, TextDelta("\n\n"))
                    message.add(deltas)
        except asyncio.CancelledError:
            live.cancel()
            self._show_end(live, message)
            self._finish(live, message)
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(live.generation.wait()), 2.0)
            raise
        self._show_end(live, message)
        try:
            await self._painted()
        finally:  # the app quitting while it paints: the answer is still saved
            self._finish(live, message)

    async def _painted(self) -> None:
        """Return once the screen has been refreshed (or after 0.5 s, if nothing is
        painting: a suspended app, a screen not shown)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.screen.wait_for_refresh(), 0.5)

    @staticmethod
    def _show_end(live: LiveAnswer, message: AssistantMessage) -> None:
        """The answer's final text and footer: only what must be painted at the end."""
        from tokentide.chat.live import STATUS_OF

        state = live.state
        generation = live.generation
        note = {
            State.DONE: f"{(generation.finish.reason if generation.finish else None) or 'done'}",
            State.STOPPED: "stopped",
            State.ERROR: "error",
        }[state]
        figures = describe_stats(generation.stats)
        message.finish(STATUS_OF[state], note=f"{note} · {figures}" if figures else note)

    def _finish(self, live: LiveAnswer, message: AssistantMessage) -> None:
        from tokentide.tui.widgets.markdown_view import settle_gc

        screen = self.screen
        screen.view.unfold()
        turn = screen.session.finish(live)
        if turn is not None and live.tools is not None:
            message.settle_tools(turn.tool_calls)
        served = live.generation.finish.model if live.generation.finish else None
        if served and not screen.profile.model:
            message.set_label(served)  # the server's default, as it named it
        screen.call_after_refresh(settle_gc)  # at rest: never while a stream runs
        screen.shown.finished(live.id, turn, message)
        if turn is None:
            screen.shown.render()  # the branch shown before it (a stopped regenerate)
        error = live.generation.error
        if live.state is State.ERROR and error is not None:
            screen.shown.error(error, keep_answer=turn is None or bool(turn.content))
        screen.commands.show_use()  # redraws the status line with the answer's end
        screen.generating = False
        screen.commands.refresh_sidebar()


def _tool_call_notice(call: ToolCallRequested) -> str:
    arguments = call.arguments if len(call.arguments) <= 200 else call.arguments[:199] + "…"
    return f"The model asked to call {call.name}({arguments}); tools are off, so it was not run."
