"""Recording one streaming answer: checkpoints at most once per interval, one final write."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from tokentide.errors import HistoryError

if TYPE_CHECKING:
    from tokentide.history.store import HistoryStore

__all__ = ["AnswerRecorder"]


def _joined(parts: list[str]) -> str:
    """The pieces as one string, kept joined in place (one join, however often read)."""
    if len(parts) > 1:
        parts[:] = ["".join(parts)]
    return parts[0] if parts else ""


class AnswerRecorder:
    """Saves one streaming answer: :meth:`append` per batch of tokens (and
    :meth:`append_reasoning` per batch of reasoning), :meth:`finish` once.

    ``append`` and ``append_reasoning`` write a checkpoint (one UPDATE carrying the new
    text and the new reasoning) when ``interval`` seconds (``time.monotonic``) have
    passed since the last one, so a crash loses at most what was appended during the
    last ``interval``.  When tokens stop arriving, pending text waits for the next
    append; a caller with a timer can call :meth:`poll` (or :meth:`flush`) to bound the
    loss in time as well.

    A failed checkpoint (disk full, database locked for 10 s) does not raise: the text
    stays in memory, :attr:`last_error` holds the error and the next checkpoint retries.
    :meth:`finish` raises :class:`~tokentide.errors.HistoryError` if the final write
    fails.
    """

    def __init__(
        self,
        store: HistoryStore,
        message_id: int,
        *,
        interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.message_id = message_id
        self.interval = interval
        self._clock = clock
        self._parts: list[str] = []
        self._saved = 0
        """How many characters of :attr:`text` the database holds."""
        self._length = 0
        self._thoughts: list[str] = []
        self._thoughts_saved = 0
        """How many characters of :attr:`reasoning` the database holds."""
        self._thoughts_length = 0
        self._last = clock()
        self.finished = False
        self.last_error: HistoryError | None = None

    @property
    def text(self) -> str:
        """Everything appended so far."""
        return _joined(self._parts)

    @property
    def reasoning(self) -> str:
        """All the reasoning appended so far."""
        return _joined(self._thoughts)

    def append(self, text: str) -> None:
        if self.finished:
            raise HistoryError("This answer was already finished.")
        if text:
            self._parts.append(text)
            self._length += len(text)
        self.poll()

    def append_reasoning(self, text: str) -> None:
        """Add a piece of the model's reasoning; checkpointed like :meth:`append`."""
        if self.finished:
            raise HistoryError("This answer was already finished.")
        if text:
            self._thoughts.append(text)
            self._thoughts_length += len(text)
        self.poll()

    @property
    def _pending(self) -> bool:
        return self._saved != self._length or self._thoughts_saved != self._thoughts_length

    def poll(self) -> bool:
        """Checkpoint if text or reasoning is pending and ``interval`` has passed;
        return whether a checkpoint was written."""
        if self.finished or not self._pending:
            return False
        if self._clock() - self._last < self.interval:
            return False
        return self.flush()

    def flush(self) -> bool:
        """Checkpoint the pending text and reasoning now; return whether it was written."""
        if self.finished or not self._pending:
            return False
        text = self.text
        reasoning = self.reasoning
        self._last = self._clock()
        try:
            self.store._append_answer(
                self.message_id, text[self._saved :], reasoning[self._thoughts_saved :]
            )
        except HistoryError as error:
            self.last_error = error
            return False
        self._saved = len(text)
        self._thoughts_saved = len(reasoning)
        self.last_error = None
        return True

    def finish(
        self,
        status: str = "complete",
        *,
        text: str | None = None,
        finish_reason: str | None = None,
        error: str | None = None,
        stats: Mapping[str, float | int | str | None] | None = None,
        reasoning: str | None = None,
        details: Mapping[str, Any] | None = None,
        model: str | None = None,
    ) -> None:
        """Store the final state.  ``text`` and ``reasoning`` replace what was appended,
        when given; ``details`` and ``model`` as :meth:`HistoryStore.finish_answer`
        takes them."""
        if self.finished:
            return
        final = self.text if text is None else text
        self.store.finish_answer(
            self.message_id,
            final,
            status=status,
            finish_reason=finish_reason,
            error=error,
            stats=stats,
            reasoning=self.reasoning if reasoning is None else reasoning,
            details=details,
            model=model,
        )
        self.finished = True
