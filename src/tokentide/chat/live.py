"""One answer being generated: the generation, its parts as they arrive, its recording.

The chat session starts a :class:`LiveAnswer`; its one consumer (the chat screen, a
test) drains :meth:`LiveAnswer.batches`, which builds the answer's parts and
checkpoints the recording before handing each batch on, and then calls
:meth:`LiveAnswer.finish`, which saves the final state and gives back the finished
:class:`~tokentide.chat.tree.Turn` (None when it was stopped before anything arrived:
the prompt is kept, not an empty answer).

With tools (:class:`~tokentide.chat.tool_use.ToolUse`), an answer is several rounds:
when a generation ends asking for calls, they are decided and run, their results go
into the answer, and the next generation starts from the conversation with them; the
batches go on across rounds, with :data:`~tokentide.chat.tool_use.ToolActivity`
events between them.  :meth:`LiveAnswer.cancel` stops whichever is running, the
generation or the tools, and keeps everything before it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar

from tokentide.backends.base import GenerationRequest
from tokentide.backends.events import Event, ReasoningDelta, TextDelta, ToolCallRequested, Usage
from tokentide.chat.answer import AnswerBuilder
from tokentide.chat.parts import stored_fields
from tokentide.chat.tool_use import ToolActivity, ToolFinished, ToolsStopped, ToolUse
from tokentide.chat.tree import Turn
from tokentide.errors import BackendError, TideError
from tokentide.generation import Generation, State
from tokentide.meter import AnswerUse

if TYPE_CHECKING:
    from tokentide.config.model import Profile
    from tokentide.history.recorder import AnswerRecorder
    from tokentide.history.store import HistoryStore

__all__ = ["STATUS_OF", "AnswerEvent", "LiveAnswer"]

T = TypeVar("T")

AnswerEvent: TypeAlias = Event | ToolActivity
"""What the batches of a live answer hold: the backend's events and, between rounds,
what the tools did."""

STATUS_OF: dict[State, str] = {
    State.DONE: "complete",
    State.STOPPED: "stopped",
    State.ERROR: "error",
}


class LiveAnswer:
    """See the module docstring.  ``placeholder`` is the answer's turn while it streams
    (status ``streaming``); ``continued``, the answer it goes on from, if any."""

    def __init__(
        self,
        generation: Generation,
        placeholder: Turn,
        profile: Profile,
        *,
        recorder: AnswerRecorder | None,
        store: HistoryStore | None,
        report: Callable[[TideError], None],
        continued: Turn | None = None,
        tools: ToolUse | None = None,
        next_round: Callable[[GenerationRequest], Generation] | None = None,
    ) -> None:
        self.generation = generation
        """The generation of the round under way (the last one, once it has ended)."""
        self.first = generation
        """The first round's generation (its time to first token is the answer's)."""
        self._rounds: list[Generation] = [generation]
        self.tools = tools
        self._next_round = next_round
        self.rounds = 0
        """Tool rounds run so far."""
        self.note: str | None = None
        """Why the tools stopped early (max_tool_rounds), if they did."""
        self._tool_task: asyncio.Task[Any] | None = None
        self._cancelled = False
        self.placeholder = placeholder
        self.profile = profile
        self.recorder = recorder
        self._store = store
        self._report = report
        self.continued = continued
        self.builder = AnswerBuilder(() if continued is None else continued.parts)
        if recorder is not None and continued is not None:
            recorder.append(continued.content)
            if continued.reasoning:
                recorder.append_reasoning(continued.reasoning)
        self.turn: Turn | None = None
        """The finished answer (after :meth:`finish`; None if nothing was kept)."""
        self.use = AnswerUse()
        self._done = False

    @property
    def id(self) -> int:
        return self.placeholder.id

    async def batches(self) -> AsyncIterator[Sequence[AnswerEvent]]:
        """The generation's batches, each recorded before it is handed on, round after
        round when the model calls tools.  A backend failure ends the iteration (the
        generation holds the error)."""
        while True:
            async for batch in self._generated():
                yield batch
            calls = self._calls()
            if not calls:
                return
            if self.tools is None or self.rounds >= self.tools.max_rounds:
                if self.tools is not None:
                    self.note = self.tools.stopped_note()
                    yield [ToolsStopped(self.note)]
                return
            decided = await self._in_task(self.tools.decide(calls))
            if decided is None:
                return  # stopped while the user was asked
            yield decided
            results = await self._in_task(self.tools.run(decided))
            if results is None:
                return  # stopped while the tools ran: the calls stay, without results
            self.builder.end_round(results)
            self.rounds += 1
            yield [ToolFinished(d.call, r) for d, r in zip(decided, results, strict=True)]
            if self._cancelled or self._next_round is None:
                return
            following = self.tools.next_request(self.first.request, self.builder.parts())
            self.generation = self._next_round(following)
            self._rounds.append(self.generation)
            self.generation.start()

    def _calls(self) -> list[ToolCallRequested]:
        """The calls the round that just ended asked for (none if it did not end well)."""
        if self._cancelled or self.generation.state is not State.DONE:
            return []
        return self.builder.asked()

    async def _in_task(self, work: Coroutine[Any, Any, T]) -> T | None:
        """``work`` as a task :meth:`cancel` can stop (a tool running, a question
        asked); None when it was stopped that way.  Cancelling the consumer cancels it
        too, and that cancellation goes on up."""
        if self.stopped():  # stopped in between: nothing more starts
            work.close()
            return None
        task = asyncio.ensure_future(work)
        self._tool_task = task
        try:
            result = await task
            # A stop that came after the task ended but before this resumed counts too.
            return None if self.stopped() else result
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if self.stopped() and (current is None or not current.cancelling()):
                return None
            raise
        finally:
            self._tool_task = None

    def stopped(self) -> bool:
        """Whether :meth:`cancel` was called (a call, not an attribute: it changes
        while this awaits)."""
        return self._cancelled

    @property
    def busy(self) -> bool:
        """Whether the answer is still being made: a generation streaming, or its tools
        running or waiting for the user's choice."""
        return not self.generation.state.finished or self._tool_task is not None

    def cancel(self) -> None:
        """Stop the answer: the generation, or the tools running or waiting for the
        user's choice (their results so far are dropped; the answer keeps the calls)."""
        self._cancelled = True
        self.generation.cancel()
        if self._tool_task is not None:
            self._tool_task.cancel()

    async def _generated(self) -> AsyncIterator[list[Event]]:
        """One round's batches, recorded."""
        recorder = self.recorder
        try:
            async for batch in self.generation.batches():
                self.builder.add(batch)
                if recorder is not None:
                    text = "".join(
                        e.text for e in batch if isinstance(e, TextDelta) and not e.special
                    )
                    thought = "".join(e.text for e in batch if isinstance(e, ReasoningDelta))
                    if thought:
                        recorder.append_reasoning(thought)
                    if text:
                        recorder.append(text)
                yield batch
        except BackendError:
            return

    def _usage(self) -> Usage | None:
        """The tokens of every round (each sent the conversation again): their sum,
        counted where every round's server said; else the one round's, or None."""
        usages = [g.finish.usage if g.finish else None for g in self._rounds]
        if len(usages) == 1:
            return usages[0]
        if any(u is None for u in usages):
            return None
        prompt = [u.prompt_tokens for u in usages if u is not None]
        answer = [u.completion_tokens for u in usages if u is not None]
        return Usage(
            prompt_tokens=None if None in prompt else sum(p for p in prompt if p is not None),
            completion_tokens=None if None in answer else sum(a for a in answer if a is not None),
        )

    def _round_stats(self) -> dict[str, float | int | None]:
        """An answer of several rounds: how many tool rounds, and the first round's time
        to first token (the wait the user had; the other figures are the last round's)."""
        if not self.rounds:
            return {}
        return {"tool_rounds": self.rounds, "ttft_s": self.first.stats.ttft}

    @property
    def state(self) -> State:
        state = self.generation.state
        if self._cancelled and state is State.DONE:
            return State.STOPPED  # stopped while its tools ran
        return state if state.finished else State.STOPPED  # the consumer was cancelled

    def finish(self) -> Turn | None:
        """Save the answer's final state and return it as a turn (idempotent)."""
        if self._done:
            return self.turn
        self._done = True
        generation = self.generation
        status = STATUS_OF[self.state]
        finish = generation.finish
        self.use = AnswerUse.of(self._usage(), self.profile)
        parts = self.builder.parts()
        served = finish.model if finish else None
        turn = replace(
            self.placeholder,
            parts=parts,
            status=status,
            model=served or self.placeholder.model,
            finish_reason=finish.reason if finish else None,
            error=generation.error.message if generation.error else None,
            stats={**generation.stats.as_dict(), **self.use.as_dict(), **self._round_stats()},
        )
        recorder, self.recorder = self.recorder, None
        if not self.builder.added and (status == "stopped" or self.continued is not None):
            # Stopped (or quit) before anything arrived: keep the prompt only.  A
            # continue that brought nothing new would only copy the answer it continues.
            if recorder is not None and self._store is not None:
                try:
                    self._store.delete_message(recorder.message_id)
                except TideError as error:
                    self._report(error)
            return None
        if recorder is not None:
            content, reasoning, details = stored_fields(parts)
            try:
                recorder.finish(
                    status=status,
                    text=content,
                    reasoning=reasoning or "",
                    details=details,
                    stats=dict(turn.stats),
                    finish_reason=turn.finish_reason,
                    error=turn.error,
                    model=served,
                )
            except TideError as error:
                self._report(error)
        self.turn = turn
        return turn
