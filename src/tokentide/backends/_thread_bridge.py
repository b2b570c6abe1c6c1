"""Run a blocking iterator in a worker thread and consume it from asyncio.

The one place in tokentide where a thread produces items for the event loop.  The
worker thread owns the iterator: it calls ``next()`` on it and, at the end, ``close()``
(so a generator's ``finally`` runs on the thread that ran the rest of it).  Items reach
the loop through ``loop.call_soon_threadsafe`` and an :class:`asyncio.Queue`; the loop
never blocks on the thread.

Two pacing modes:

``read_ahead=False`` (pull, the default; used for user predictors)
    The thread calls ``next()`` only when the consumer asks for the next item, exactly
    as a plain ``for`` loop over the generator would.  At any moment the generator is
    therefore either *suspended at a yield* or *computing the item the consumer is
    waiting for*.
``read_ahead=True`` (push; used for the llama.cpp token loop)
    The thread produces as fast as it can and queues items, so producing the next
    token overlaps with the consumer handling the last one.

Stopping.  When the consumer closes the async generator (``aclose()``, or cancellation
of the task iterating it), its ``finally`` sets a stop flag, wakes the thread, and
returns at once: it never waits for the thread, so it returns in microseconds whatever
the iterator is doing.  The thread then:

* if the iterator is suspended at a yield (pull mode, between items): closes it
  immediately, so ``GeneratorExit`` is raised at that ``yield`` and its ``finally`` runs;
* if it is inside ``next()`` (computing an item, or blocked): nothing can interrupt that
  call from outside; as soon as it returns, the item is discarded and the iterator is
  closed.  A generator that never yields again is never closed (the thread is a daemon
  thread, so it does not keep the process alive).

A blocking iterator therefore stops *at its next yield at the latest*, and the consumer
returns immediately either way.  Iterators that can stop sooner take the ``stop`` event
passed to ``source`` and check it themselves (the llama.cpp loop does, per token).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncGenerator, Callable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["iterate_in_thread"]

T = TypeVar("T")

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Item(Generic[T]):
    value: T


@dataclass(frozen=True, slots=True)
class _Raised:
    error: BaseException


@dataclass(frozen=True, slots=True)
class _End:
    pass


async def iterate_in_thread(
    source: Callable[[threading.Event], Iterator[T]],
    *,
    read_ahead: bool = False,
    name: str = "tokentide-worker",
) -> AsyncGenerator[T, None]:
    """Call ``source(stop)`` in a new daemon thread and yield what the iterator produces.

    ``stop`` is set when the consumer goes away; ``source`` may watch it to give up
    early (e.g. while waiting for a lock).  An exception raised by ``source`` or by the
    iterator is re-raised here, in the consumer, with its original traceback.  See the
    module docstring for when the iterator is closed.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[_Item[T] | _Raised | _End] = asyncio.Queue()
    stop = threading.Event()
    demand = None if read_ahead else threading.Semaphore(0)

    def post(message: _Item[T] | _Raised | _End) -> None:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, message)
        except RuntimeError:  # the loop has closed: nobody is listening any more
            stop.set()

    def wanted() -> bool:
        """Wait (pull mode) until the consumer asks for an item; False once stopped."""
        if demand is not None:
            demand.acquire()
        return not stop.is_set()

    def work() -> None:
        iterator: Iterator[T] | None = None
        try:
            if not wanted():
                return
            iterator = source(stop)
            while True:
                try:
                    value = next(iterator)
                except StopIteration:
                    post(_End())
                    return
                if stop.is_set():
                    return  # the consumer has gone: drop the item, close below
                post(_Item(value))
                if not wanted():
                    return
        except BaseException as error:  # any failure must reach the consumer, or it waits forever
            if not stop.is_set():
                post(_Raised(error))
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                try:
                    close()
                except Exception:
                    log.warning("closing %s raised", name, exc_info=True)

    threading.Thread(target=work, name=name, daemon=True).start()
    try:
        while True:
            if demand is not None:
                demand.release()
            match await queue.get():
                case _Item(value=value):
                    yield value
                case _Raised(error=error):
                    raise error
                case _End():
                    return
    finally:
        stop.set()
        if demand is not None:
            demand.release()  # wake a thread parked between items, so it closes now
