"""``api = "local"``: any Python function in this process is a backend.

    [profiles.mine]
    api = "local"
    target = "examples/predictors/story.py:generate"   # or "package.module:function"
    yields = "delta"                                     # or "cumulative"

The function (a *predictor*) receives, as keyword arguments, whichever of these it names
(a function with ``**kwargs`` receives all of them):

    messages     list of {"role": ..., "content": ...} dicts, oldest first
    prompt       the text of the last user message
    system       the system prompt, or None
    max_tokens / temperature / seed     from the request, else the profile, else None
    request      the whole GenerationRequest

It may be an eager function (sync or async) that returns the whole answer, or a
generator (sync or async) that yields it in pieces.  Answers and pieces may be ``str``,
or dicts shaped ``{"content": ...}``, ``{"text": ...}`` or like an OpenAI chat chunk
(``{"choices": [{"delta": {"content": ...}}]}``); ``None`` pieces are skipped.
Generators and coroutines are recognised both from the function and from what it
returns, so decorators that hide the function's kind do not matter.

Semantics, as Function/Muna define them:

* ``stream`` on an eager function yields one :class:`TextDelta` with the whole answer,
  then :class:`Finish`;
* ``stream`` on a generator yields each piece as it is produced, then ``Finish("stop")``
  (or the ``finish_reason`` an OpenAI-shaped chunk gave);
* ``create`` on a generator consumes every piece and returns the concatenation
  (``yields = "delta"``) or the last piece (``yields = "cumulative"``).

With ``yields = "cumulative"`` each piece is the whole answer so far ("hello",
"hello from", "hello from Muna"); ``stream`` turns them into deltas and raises
:class:`LocalFunctionError` when a piece does not extend the previous one (a revision
cannot be shown as appended text).  ``create`` only keeps the last piece, so it accepts
revisions.

Threads and stopping: sync functions and sync generators run in a worker thread, never
on the event loop, and a sync generator is advanced only when the consumer asks for the
next piece (no read-ahead).  Closing or cancelling the stream returns at once; the
generator is closed, so its ``finally`` runs, immediately if it is suspended at a
``yield``, or else as soon as its current step reaches the next ``yield`` (a Python
thread cannot be interrupted).  Async functions and async generators run on the event
loop and are cancelled or closed in the ordinary asyncio way.  See
:mod:`tokentide.backends._thread_bridge` and ``docs/backends-local.md``.

Errors: an exception raised by the predictor becomes :class:`LocalFunctionError`
naming the target and showing the exception's type and message; ``sys.exit()`` and
``KeyboardInterrupt`` become :class:`~tokentide.backends.local_isolation.PredictorExited`
(a ``LocalFunctionError``) instead of ending tokentide.  Pieces already yielded have
already been delivered.  A target that cannot be loaded is a :class:`ConfigError`
raised by :func:`from_profile` (:mod:`tokentide.backends.local_load`).

Isolation and limits: what a predictor prints goes to the debug log, never to
tokentide's stdout/stderr (:mod:`tokentide.backends.local_isolation`); each piece is
checked against ``max_event_bytes`` and the answer against ``max_answer_bytes`` as the
piece arrives, in ``stream`` and ``create`` alike, by the
:class:`~tokentide.backends.stream_guard.StreamGuard` every backend uses.
"""

from __future__ import annotations

import inspect
import logging
import threading
from collections.abc import AsyncGenerator, Callable, Iterator, Mapping
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any, cast

from tokentide.backends._cumulative import Yields, yields_option
from tokentide.backends._thread_bridge import iterate_in_thread
from tokentide.backends.base import GenerationRequest, Reply
from tokentide.backends.events import Event, Finish, TextDelta
from tokentide.backends.local_isolation import Capture, capturing, exit_error, installed
from tokentide.backends.local_load import ARGUMENTS, TARGET_HINT, load_target, parameters
from tokentide.backends.media import backend_label, refuse_images
from tokentide.backends.stream_guard import StreamGuard, Wording
from tokentide.config.model import Limits, Profile
from tokentide.errors import BackendError, ConfigError, LocalFunctionError, excerpt

__all__ = ["ARGUMENTS", "LocalBackend", "from_profile", "load_target"]

_log = logging.getLogger(__name__)

_EXITS = (SystemExit, KeyboardInterrupt)
"""BaseExceptions a predictor may raise that must not end tokentide (see local_isolation)."""


# -- what a predictor produces -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Piece:
    text: str | None
    finish_reason: str | None = None


@dataclass(frozen=True, slots=True)
class _Eager:
    """The whole answer of an eager function."""

    value: str


@dataclass(frozen=True, slots=True)
class _Async:
    """A coroutine or async generator returned by a function that did not look async."""

    value: object


def _is_stream(value: object) -> bool:
    """A sync iterator of pieces (a generator or any other iterator), not a whole answer."""
    return isinstance(value, Iterator) and not isinstance(value, str | bytes | dict)


class LocalBackend:
    """Calls one Python function per answer.  See the module docstring."""

    def __init__(
        self,
        function: Callable[..., object],
        *,
        target: str,
        yields: Yields = "delta",
        profile: Profile | None = None,
    ) -> None:
        self.function = function
        """The predictor itself (its module is ``sys.modules[function.__module__]``)."""
        self.target = target
        self.yields: Yields = yields
        self._profile = profile
        self._parameters = parameters(function, target)
        self.continues_answers = getattr(function, "continues_answers", False) is True
        """:class:`~tokentide.backends.base.ContinuesAnswers`: a predictor that goes on
        from a final assistant message says so with ``continues_answers = True``."""

    @property
    def name(self) -> str:
        return f"local {self.target}"

    async def aclose(self) -> None:
        pass

    # -- calling ---------------------------------------------------------------------

    def _arguments(self, request: GenerationRequest) -> dict[str, Any]:
        profile = self._profile
        # the predictor's messages are text; it could read request.messages, but no
        # predictor says it sees pictures, so they are refused rather than lost
        refuse_images(request, backend_label(profile, "local"), self.name)
        messages = [{"role": m.role, "content": m.content} for m in request.messages]
        system = next((m.content for m in request.messages if m.role == "system"), None)
        if system is None and profile is not None:
            system = profile.system
        prompt = next((m.content for m in reversed(request.messages) if m.role == "user"), "")

        def pick(own: Any, default: Any) -> Any:
            return own if own is not None else default

        every: dict[str, Any] = {
            "messages": messages,
            "prompt": prompt,
            "system": system,
            "max_tokens": pick(request.max_tokens, profile and profile.max_tokens),
            "temperature": pick(request.temperature, profile and profile.temperature),
            "seed": pick(request.seed, profile and profile.seed),
            "request": request,
        }
        if self._parameters is None:
            return every
        return {name: every[name] for name in self._parameters}

    def _failed(self, error: BaseException) -> BackendError:
        if isinstance(error, BackendError):
            return error  # the predictor chose its own error
        if isinstance(error, _EXITS):
            return exit_error(error, self.target)
        return LocalFunctionError(
            f"{self.target} raised {type(error).__name__}: {excerpt(str(error)) or '(no message)'}",
            server=self.target,
        )

    def _piece(self, value: object) -> _Piece:
        """Text (and finish reason) of one returned or yielded value."""
        if value is None or isinstance(value, str):
            return _Piece(value)
        dump = getattr(value, "model_dump", None)  # an OpenAI SDK / pydantic chunk object
        if callable(dump) and not isinstance(value, dict):
            value = dump()
        if isinstance(value, dict):
            choices = value.get("choices")
            if isinstance(choices, list):
                if not choices:
                    return _Piece(None)
                choice = choices[0] if isinstance(choices[0], dict) else {}
                inner = choice.get("delta") or choice.get("message") or {}
                text = inner.get("content") if isinstance(inner, dict) else None
                if text is None:
                    text = choice.get("text")
                reason = choice.get("finish_reason")
                return _Piece(
                    text if isinstance(text, str) else None,
                    reason if isinstance(reason, str) else None,
                )
            for key in ("content", "text"):
                text = value.get(key)
                if isinstance(text, str):
                    return _Piece(text)
        raise LocalFunctionError(
            f"{self.target} produced {type(value).__name__} {excerpt(repr(value), 120)}; "
            "expected str, None, or a dict with 'content', 'text' or OpenAI 'choices'.",
            server=self.target,
        )

    async def _pieces(self, request: GenerationRequest) -> AsyncGenerator[_Piece | _Eager, None]:
        """Run the predictor, isolated: its pieces, or one :class:`_Eager` for a whole answer."""
        arguments = self._arguments(request)
        function = self.function
        target = self.target
        capture = Capture(target)
        result: object = None
        if inspect.iscoroutinefunction(function) or inspect.isasyncgenfunction(function):
            try:
                with installed(), capturing(capture):
                    result = function(**arguments)
            except BackendError:
                raise
            except (Exception, SystemExit, KeyboardInterrupt) as error:
                raise self._failed(error) from error
        else:
            # Call it in the worker thread: an eager sync function computes its whole
            # answer in that call.  Then iterate whatever it returned, there too.  The
            # thread is the predictor's own: everything it prints is captured, until the
            # generator is closed (which may be long after the consumer has gone).
            def run(stop: threading.Event) -> Iterator[object]:
                with installed(), capturing(capture):
                    try:
                        returned = function(**arguments)
                        if inspect.iscoroutine(returned) or inspect.isasyncgen(returned):
                            yield _Async(returned)
                        elif _is_stream(returned):
                            yield from cast(Iterator[object], returned)
                        else:
                            yield _Eager(self._piece(returned).text or "")
                    except _EXITS as error:  # here, in its thread, as close() runs here too
                        exited = exit_error(error, target)
                        if stop.is_set():  # while being closed: nobody waits for it now
                            _log.debug("%s (while being closed)", exited.message)
                            return
                        raise exited from error
                    finally:
                        capture.flush()

            async with aclosing(iterate_in_thread(run, name=f"tokentide-local {target}")) as items:
                try:
                    async for item in items:
                        if isinstance(item, _Async):
                            result = item.value
                            break
                        if isinstance(item, _Eager):
                            yield item
                            return
                        yield self._piece(item)
                    else:
                        return
                except BackendError:
                    raise
                except (Exception, SystemExit, KeyboardInterrupt) as error:
                    raise self._failed(error) from error
        # An async function or async generator, run on the event loop: each of its steps
        # is captured, the consumer's code between them is not.
        with installed():
            try:
                if inspect.isasyncgen(result):
                    agen = result
                    try:
                        while True:
                            with capturing(capture):
                                try:
                                    value = await anext(agen)
                                except StopAsyncIteration:
                                    break
                            yield self._piece(value)
                    finally:
                        with capturing(capture):
                            await agen.aclose()
                    return
                if inspect.iscoroutine(result):
                    with capturing(capture):
                        result = await result
            except BackendError:
                raise
            except (Exception, SystemExit, KeyboardInterrupt) as error:
                raise self._failed(error) from error
            finally:
                capture.flush()
        yield _Eager(self._piece(result).text or "")

    # -- the Backend protocol ----------------------------------------------------------

    def stream_guard(self, style: Yields | None = None) -> StreamGuard:
        """The limits and yields style of one answer (a revision is the predictor's
        own :class:`LocalFunctionError`)."""
        limits = self._profile.limits if self._profile is not None else Limits()
        return StreamGuard(
            limits,
            self.yields if style is None else style,
            wording=Wording(
                self.target,
                self.target,
                piece="produced a piece",
                piece_hint="Raise max_event_bytes in the profile if pieces this large are "
                "expected, or yield the answer in smaller pieces.",
                revision_error=LocalFunctionError,
            ),
        )

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[Event, None]:
        reason: str | None = None
        guard = self.stream_guard()
        async with aclosing(self._pieces(request)) as pieces:
            async for piece in pieces:
                if isinstance(piece, _Eager):
                    text = guard.whole(piece.value)
                else:
                    reason = piece.finish_reason or reason
                    if not piece.text:
                        continue
                    text = guard.text(piece.text)
                if text:
                    yield TextDelta(text)
                if guard.exhausted:
                    raise guard.too_long()
        yield Finish(reason or "stop")

    async def create(self, request: GenerationRequest) -> Reply:
        parts: list[str] = []
        reason: str | None = None
        # "cumulative": the last piece is the answer, revisions allowed, as in Muna.
        guard = self.stream_guard("delta" if self.yields == "cumulative" else None)
        async with aclosing(self._pieces(request)) as pieces:
            async for piece in pieces:
                if isinstance(piece, _Eager):
                    guard.whole(piece.value)
                    if guard.exhausted:
                        raise guard.too_long()
                    parts = [piece.value]
                    continue
                reason = piece.finish_reason or reason
                text = piece.text
                if text is None:
                    continue
                if self.yields == "cumulative":
                    guard.revise(text)
                    parts = [text]
                    continue
                cumulative = guard.cumulative  # "auto", while each piece extends the last
                delta = guard.text(text)
                if guard.exhausted:
                    raise guard.too_long()
                if cumulative and guard.cumulative:
                    parts = [text]
                else:
                    parts.append(delta)
        return Reply(text="".join(parts), finish_reason=reason or "stop")


def from_profile(profile: Profile, env: Mapping[str, str]) -> LocalBackend:
    options = profile.options
    target = options.get("target")
    if not isinstance(target, str) or not target.strip():
        raise ConfigError(
            f"Profile {profile.name!r} (api 'local') needs a target.", hint=TARGET_HINT
        )
    yields = yields_option(options, profile.name)
    target = target.strip()
    return LocalBackend(load_target(target), target=target, yields=yields, profile=profile)
