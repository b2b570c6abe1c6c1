"""One answer being generated: the generation, its parts as they arrive, its recording.

The chat session starts a :class:`LiveAnswer`; its one consumer (the chat screen, a
test) drains :meth:`LiveAnswer.batches`, which builds the answer's parts and
checkpoints the recording before handing each batch on, and then calls
:meth:`LiveAnswer.finish`, which saves the final state and gives back the finished
:class:`~tokentide.chat.tree.Turn` (None when it was stopped before anything arrived:
the prompt is kept, not an empty answer).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from tokentide.backends.events import Event, ReasoningDelta, TextDelta
from tokentide.chat.answer import AnswerBuilder
from tokentide.chat.parts import stored_fields
from tokentide.chat.tree import Turn
from tokentide.errors import BackendError, TideError
from tokentide.generation import Generation, State
from tokentide.meter import AnswerUse

if TYPE_CHECKING:
    from tokentide.config.model import Profile
    from tokentide.history.recorder import AnswerRecorder
    from tokentide.history.store import HistoryStore

__all__ = ["STATUS_OF", "LiveAnswer"]

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
    ) -> None:
        self.generation = generation
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

    async def batches(self) -> AsyncIterator[list[Event]]:
        """The generation's batches, each recorded before it is handed on.  A backend
        failure ends the iteration (the generation holds the error)."""
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

    @property
    def state(self) -> State:
        state = self.generation.state
        return state if state.finished else State.STOPPED  # the consumer was cancelled

    def finish(self) -> Turn | None:
        """Save the answer's final state and return it as a turn (idempotent)."""
        if self._done:
            return self.turn
        self._done = True
        generation = self.generation
        status = STATUS_OF[self.state]
        finish = generation.finish
        self.use = AnswerUse.of(finish.usage if finish else None, self.profile)
        parts = self.builder.parts()
        served = finish.model if finish else None
        turn = replace(
            self.placeholder,
            parts=parts,
            status=status,
            model=served or self.placeholder.model,
            finish_reason=finish.reason if finish else None,
            error=generation.error.message if generation.error else None,
            stats={**generation.stats.as_dict(), **self.use.as_dict()},
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
