"""One answer being generated: the single path every consumer uses.

    backend.stream()/create()  ──producer task──▶  TokenQueue  ──▶  consumers
          (network, thread,        never waits        (asyncio       pipe printer, TUI,
           gRPC call)              on painting)        Queue)         comparison runner

A :class:`Generation` owns an :class:`asyncio.Queue` fed by a producer task that reads
the backend.  The producer never waits for a consumer; consumers drain what is queued,
in batches, at their own pace (:meth:`Generation.batches`, :meth:`Generation.drain`), or
event by event (``async for event in generation``).

It also owns what is the same for every backend:

* timing: time to first *content* token (not the first SSE frame or a role-only chunk),
  inter-token gaps, the count (tokens or chunks, honestly: see
  :mod:`tokentide.generation_stats`), total time, in :class:`Stats`;
* deadlines: first token and idle-between-content-tokens, checked by a watchdog task
  (zero cost per token; keep-alive comments never count as content); connect deadlines
  are the transport's;
* retries: exponential backoff with jitter, honouring ``Retry-After`` up to a cap, only
  *before* the first content token, so text is never duplicated;
* stopping: :meth:`Generation.cancel` cancels the producer task; the backend unwinds
  through its ``async with``/``finally`` blocks, which close the HTTP response, cancel
  the gRPC call or close the local generator, so the server sees the disconnect.

The partial answer is always kept: :attr:`Generation.text` holds what arrived before a
stop or an error.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import random
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from dataclasses import dataclass

from tokentide.backends.base import Backend, GenerationRequest, StreamsBatches, TokenEvents
from tokentide.backends.events import Event, Finish, ReasoningDelta, Retrying, TextDelta
from tokentide.config.model import Deadlines
from tokentide.errors import BackendError, FirstTokenTimeout, HTTPStatusError, IdleTimeout
from tokentide.generation_stats import Mode, Stats, Unit

__all__ = ["Generation", "Mode", "RetryPolicy", "State", "Stats", "TokenQueue", "Unit"]

_log = logging.getLogger(__name__)


class State(enum.StrEnum):
    WAITING = "waiting"
    """Request sent, no content yet."""
    RETRYING = "retrying"
    STREAMING = "streaming"
    DONE = "done"
    STOPPED = "stopped"
    ERROR = "error"

    @property
    def finished(self) -> bool:
        return self in (State.DONE, State.STOPPED, State.ERROR)


class _End:
    __slots__ = ()


_END = _End()


class TokenQueue(asyncio.Queue[list[Event] | _End]):
    """An unbounded asyncio queue of event lists (one per network read) that can also
    hand over everything queued at once."""

    _queue: deque[list[Event] | _End]

    def drain_nowait(self) -> list[list[Event] | _End]:
        """Remove and return every queued item (possibly none) without waiting."""
        items = list(self._queue)
        self._queue.clear()
        return items


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Backoff 0.5 s · 2ⁿ capped at 8 s, jitter up to −25 %, ``Retry-After`` honoured up
    to 120 s (a longer wait is not retried: the error says how long the server asked)."""

    max_retries: int = 2
    initial: float = 0.5
    cap: float = 8.0
    max_retry_after: float = 120.0

    def delay(self, error: BackendError, attempt: int, rng: random.Random) -> float | None:
        """Seconds to wait before attempt ``attempt + 1``, or None for no retry."""
        if attempt > self.max_retries or not error.retryable:
            return None
        retry_after = error.retry_after if isinstance(error, HTTPStatusError) else None
        if retry_after is not None:
            return float(retry_after) if retry_after <= self.max_retry_after else None
        base = min(self.cap, self.initial * 2.0 ** (attempt - 1))
        return base * (1 - 0.25 * rng.random())


def _flatten(items: list[list[Event] | _End]) -> list[Event]:
    if len(items) == 1:
        only = items[0]
        return [] if isinstance(only, _End) else only
    return [event for item in items if not isinstance(item, _End) for event in item]


class Generation:
    """See the module docstring.  Use as ``async with Generation(...) as gen:`` or call
    :meth:`start` and later :meth:`cancel`/:meth:`wait`."""

    def __init__(
        self,
        backend: Backend,
        request: GenerationRequest,
        *,
        mode: Mode = "stream",
        deadlines: Deadlines | None = None,
        retry: RetryPolicy | None = None,
        clock: Callable[[], float] = time.perf_counter,
        rng: random.Random | None = None,
    ) -> None:
        self.backend = backend
        self.request = request
        self.mode: Mode = mode
        self.deadlines = deadlines or Deadlines(connect=None, first_token=None, idle=None)
        self.retry = retry or RetryPolicy(max_retries=0)
        self._clock = clock
        self._rng = rng or random.Random()
        self.queue = TokenQueue()
        self.stats = Stats(mode=mode)
        if mode == "stream" and isinstance(backend, TokenEvents):
            self.stats.token_events = backend.events_are_tokens
        self.state = State.WAITING
        self.error: BackendError | None = None
        self.finish: Finish | None = None
        self._text: list[str] = []
        self._reasoning: list[str] = []
        self._activity: float | None = None
        self._timeout: BackendError | None = None
        self._cancelled = False
        self._producer: asyncio.Task[None] | None = None
        self._watchdog: asyncio.Task[None] | None = None
        self._done = asyncio.Event()
        self.on_state: Callable[[State], None] | None = None
        """Called on every state change (the TUI's status line listens here)."""

    # -- public ---------------------------------------------------------------------------

    @property
    def text(self) -> str:
        """The answer so far (special tokens excluded)."""
        return "".join(self._text)

    @property
    def reasoning(self) -> str:
        return "".join(self._reasoning)

    def start(self) -> Generation:
        if self._producer is None:
            self.stats.started = self._clock()
            self._producer = asyncio.create_task(self._produce(), name="tokentide-producer")
            self._producer.add_done_callback(self._producer_done)
            if self.deadlines.first_token is not None or self.deadlines.idle is not None:
                self._watchdog = asyncio.create_task(self._watch(), name="tokentide-watchdog")
        return self

    def cancel(self) -> None:
        """Stop generating.  Returns at once; the producer closes the backend stream.

        Idempotent: a second stop (or a stop and a deadline at once) must not throw a
        second ``CancelledError`` into the first one's cleanup, which would leave a
        response half closed."""
        self._cancel_producer()

    def _cancel_producer(self) -> None:
        if self._producer is not None and not self._producer.done() and not self._cancelled:
            self._cancelled = True
            self._producer.cancel()

    def _producer_done(self, _task: asyncio.Task[None]) -> None:
        """A producer cancelled before it ever ran skips its ``finally``: end here, or
        :meth:`wait` (and ``async with``) would wait forever."""
        if not self._done.is_set():
            self._set_state(State.STOPPED)
            self.stats.ended = self._clock()
            if self._watchdog is not None:
                self._watchdog.cancel()
            self.queue.put_nowait(_END)
            self._done.set()

    async def wait(self) -> State:
        """Wait until the producer has finished (and closed the backend stream)."""
        await self._done.wait()
        return self.state

    async def __aenter__(self) -> Generation:
        return self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        self.cancel()
        if self._producer is not None:
            await asyncio.shield(self._done.wait())

    async def batches(self) -> AsyncIterator[list[Event]]:
        """Yield lists of every event queued since the last batch, until the answer ends.

        Raises the generation's :class:`BackendError` (after delivering every event that
        came before it); a stop by :meth:`cancel` ends the iteration quietly.
        """
        self.start()
        queue = self.queue
        while True:
            first = await queue.get()
            items = [first, *queue.drain_nowait()] if queue.qsize() else [first]
            ended = isinstance(items[-1], _End)
            events = _flatten(items)
            if events:
                yield events
            if ended:
                if self.error is not None:
                    raise self.error
                return

    def drain(self) -> list[Event]:
        """Every event queued right now, without waiting (possibly none)."""
        return _flatten(self.queue.drain_nowait())

    async def __aiter__(self) -> AsyncIterator[Event]:
        async for batch in self.batches():
            for event in batch:
                yield event

    # -- producer -------------------------------------------------------------------------

    def _set_state(self, state: State) -> None:
        if state is not self.state:
            self.state = state
            if self.on_state is not None:
                self.on_state(state)

    def _accept(self, events: list[Event]) -> None:
        """Record what one network read brought, then queue it as one item."""
        now = self._clock()
        stats = self.stats
        for event in events:
            if type(event) is TextDelta:
                self._activity = now
                if event.text and not event.special:
                    self._text.append(event.text)
                    stats.chars += len(event.text)
                    if stats.first_token is None:
                        stats.first_token = now
                        self._set_state(State.STREAMING)
                    else:
                        stats.gaps.append(now - stats.last_token)  # type: ignore[operator]
                    stats.last_token = now
                    stats.tokens += 1
                    if event.token_id is not None:
                        stats.id_events += 1
            elif isinstance(event, ReasoningDelta):
                self._activity = now
                self._reasoning.append(event.text)
            elif isinstance(event, Finish):
                self.finish = event
                if event.usage is not None and event.usage.completion_tokens is not None:
                    stats.usage_tokens = event.usage.completion_tokens
        self.queue.put_nowait(events)

    async def _attempt(self) -> None:
        if self.mode == "stream":
            if isinstance(self.backend, StreamsBatches):
                async with aclosing(self.backend.stream_batches(self.request)) as batches:
                    async for batch in batches:
                        self._accept(batch)
                return
            async with aclosing(self.backend.stream(self.request)) as stream:
                async for event in stream:
                    self._accept([event])
            return
        reply = await self.backend.create(self.request)
        now = self._clock()
        stats = self.stats
        events: list[Event] = []  # one queue item: the whole answer lands at once
        if reply.reasoning:
            events.append(ReasoningDelta(reply.reasoning))
        if reply.text:
            self._text.append(reply.text)
            stats.chars = len(reply.text)
            stats.first_token = stats.last_token = now
            stats.tokens = 1  # one event; counted as tokens only with details or usage
            self._set_state(State.STREAMING)
            events.append(TextDelta(reply.text))
        if reply.tokens:  # per-token details (TGI): real tokens, counted as a stream's
            stats.tokens = sum(1 for t in reply.tokens if t.text and not t.special)
            stats.token_events = True
        events.extend(reply.tool_calls)  # the calls come before the Finish, as streamed
        finish = Finish(reply.finish_reason, reply.usage, reply.seed, reply.text, reply.model)
        self.finish = finish
        if reply.usage is not None and reply.usage.completion_tokens is not None:
            stats.usage_tokens = reply.usage.completion_tokens
        events.append(finish)
        self.queue.put_nowait(events)

    async def _produce(self) -> None:
        attempt = 0
        try:
            while True:
                attempt += 1
                self.stats.attempts = attempt
                self.stats.attempt_started = self._clock()
                try:
                    await self._attempt()
                    break
                except BackendError as error:
                    if self._text or self._reasoning:
                        raise  # never retry once content arrived: text would repeat
                    delay = self.retry.delay(error, attempt, self._rng)
                    if delay is None:
                        raise
                    self._set_state(State.RETRYING)
                    self.queue.put_nowait([Retrying(attempt + 1, delay, error.message)])
                    await asyncio.sleep(delay)
                    self._set_state(State.WAITING)
            self._set_state(State.DONE)
        except asyncio.CancelledError:
            if self._timeout is not None:
                self.error = self._timeout
                self._set_state(State.ERROR)
            else:
                self._set_state(State.STOPPED)
        except BackendError as error:
            self.error = error
            self._set_state(State.ERROR)
        except Exception as bug:  # a backend bug: end the answer visibly, never hang
            _log.debug("backend %s failed", self.backend.name, exc_info=True)
            self.error = BackendError(
                f"The backend failed unexpectedly: {type(bug).__name__}: {bug}",
                server=self.backend.name,
                hint="This is a bug in tokentide; `tide --debug` writes a log to report it with.",
            )
            self._set_state(State.ERROR)
        finally:
            self.stats.ended = self._clock()
            if self._watchdog is not None:
                self._watchdog.cancel()
            self.queue.put_nowait(_END)
            self._done.set()

    async def _watch(self) -> None:
        first = self.deadlines.first_token
        idle = self.deadlines.idle
        limits = [d for d in (first, idle) if d is not None]
        interval = max(0.005, min(0.5, min(limits) / 10))
        while True:
            await asyncio.sleep(interval)
            now = self._clock()
            if self.state is State.RETRYING:
                continue
            if self._activity is None:
                if first is not None and now - self.stats.attempt_started > first:
                    self._timeout = FirstTokenTimeout(
                        f"No answer from {self.backend.name} within the first-token "
                        f"deadline of {first:g} s.",
                        server=self.backend.name,
                        hint="Raise first_token_timeout in the profile for slow prompts.",
                    )
                    break
            elif idle is not None and now - self._activity > idle:
                self._timeout = IdleTimeout(
                    f"The answer from {self.backend.name} stalled: no new token within "
                    f"the idle deadline of {idle:g} s.",
                    server=self.backend.name,
                    hint="Raise idle_timeout in the profile if this server pauses that long.",
                )
                break
        self._cancel_producer()
