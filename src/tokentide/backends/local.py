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
naming the target and showing the exception's type and message; pieces already
yielded have already been delivered.  A target that cannot be loaded is a
:class:`ConfigError` raised by :func:`from_profile`.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import sys
import threading
from collections.abc import AsyncGenerator, Callable, Iterator, Mapping
from contextlib import aclosing
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, cast

from tokentide.backends._cumulative import Accumulator, Yields, yields_option
from tokentide.backends._thread_bridge import iterate_in_thread
from tokentide.backends.base import GenerationRequest, Reply
from tokentide.backends.events import Event, Finish, TextDelta
from tokentide.config.model import Profile
from tokentide.errors import (
    BackendError,
    ConfigError,
    LimitExceeded,
    LocalFunctionError,
    ProtocolError,
    excerpt,
)

__all__ = ["ARGUMENTS", "LocalBackend", "from_profile", "load_target"]


ARGUMENTS = ("messages", "prompt", "system", "max_tokens", "temperature", "seed", "request")
"""The keyword arguments a predictor may ask for, by parameter name."""

_TARGET_HINT = (
    'Write target = "path/to/file.py:function" (relative to the current directory, '
    'or absolute) or target = "package.module:function".'
)


# -- loading the target ------------------------------------------------------------------


def load_target(target: str) -> Callable[..., object]:
    """The callable ``target`` names.  Raises :class:`ConfigError` if it cannot be loaded."""
    path_or_module, colon, attribute = target.rpartition(":")
    if not colon or not path_or_module or not attribute:
        raise ConfigError(f"target {target!r} does not name a function.", hint=_TARGET_HINT)
    if path_or_module.endswith(".py") or "/" in path_or_module or "\\" in path_or_module:
        module = _load_file(Path(path_or_module).expanduser(), target)
    else:
        module = _import_module(path_or_module, target)
    obj: object = module
    for part in attribute.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            names = sorted(n for n in dir(module) if not n.startswith("_"))
            raise ConfigError(
                f"target {target!r}: {path_or_module} has no {attribute!r}.",
                hint=f"It defines: {', '.join(names) or 'nothing public'}.",
            ) from None
    if not callable(obj):
        raise ConfigError(
            f"target {target!r}: {attribute!r} is a {type(obj).__name__}, not a function.",
            hint=_TARGET_HINT,
        )
    return cast(Callable[..., object], obj)


def _load_file(path: Path, target: str) -> ModuleType:
    if not path.is_file():
        raise ConfigError(
            f"target {target!r}: no file {str(path)!r} (looked in {Path.cwd()}).",
            hint="Relative paths are relative to the current directory; or use an absolute path.",
        )
    resolved = path.resolve()
    # A private, unique module name: two files called predictor.py do not collide, and
    # the module is in sys.modules (dataclasses, pickle and inspect.getmodule need it).
    digest = hashlib.sha1(str(resolved).encode(), usedforsecurity=False).hexdigest()[:12]
    name = f"_tokentide_local_{resolved.stem}_{digest}"
    spec = importlib.util.spec_from_file_location(name, resolved)
    if spec is None or spec.loader is None:
        raise ConfigError(f"target {target!r}: {str(path)!r} cannot be loaded as Python.")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as error:
        del sys.modules[name]
        raise ConfigError(
            f"target {target!r}: loading {str(path)!r} raised "
            f"{type(error).__name__}: {excerpt(str(error))}",
            hint=f"Check that `python {path}` runs.",
        ) from error
    return module


def _import_module(name: str, target: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as error:
        if error.name is not None and name.startswith(error.name):
            raise ConfigError(
                f"target {target!r}: no module named {error.name!r}.",
                hint="Install the package or check the spelling; a file is written "
                '"path/to/file.py:function".',
            ) from error
        raise ConfigError(
            f"target {target!r}: importing {name} raised ModuleNotFoundError: {error}",
        ) from error
    except Exception as error:
        raise ConfigError(
            f"target {target!r}: importing {name} raised {type(error).__name__}: "
            f"{excerpt(str(error))}",
        ) from error


def _parameters(function: Callable[..., object], target: str) -> frozenset[str] | None:
    """Names of the arguments to pass; None means all of them (``**kwargs``)."""
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return frozenset()  # builtins without a signature: call with no arguments
    names: set[str] = set()
    for parameter in signature.parameters.values():
        if parameter.kind is inspect.Parameter.VAR_KEYWORD:
            return None
        if parameter.kind is inspect.Parameter.VAR_POSITIONAL:
            continue
        known = parameter.name in ARGUMENTS
        if known and parameter.kind is not inspect.Parameter.POSITIONAL_ONLY:
            names.add(parameter.name)
        elif parameter.default is inspect.Parameter.empty:
            raise ConfigError(
                f"target {target!r}: parameter {parameter.name!r} cannot be supplied.",
                hint=f"A predictor takes any of these by name: {', '.join(ARGUMENTS)} "
                "(or **kwargs for all).",
            )
    return frozenset(names)


# -- what a predictor produces -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Piece:
    text: str | None
    finish_reason: str | None = None


@dataclass(frozen=True, slots=True)
class _Eager:
    """The whole answer of an eager sync function, computed in the worker thread."""

    value: object


@dataclass(frozen=True, slots=True)
class _Async:
    """A coroutine or async generator returned by a function that did not look async."""

    value: object


def _clip(text: str, room: int) -> str:
    """The longest prefix of ``text`` that fits in ``room`` UTF-8 bytes."""
    if room <= 0:
        return ""
    return text[:room].encode()[:room].decode(errors="ignore")


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
        self._parameters = _parameters(function, target)

    @property
    def name(self) -> str:
        return f"local {self.target}"

    async def aclose(self) -> None:
        pass

    # -- calling ---------------------------------------------------------------------

    def _arguments(self, request: GenerationRequest) -> dict[str, Any]:
        profile = self._profile
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
        """Run the predictor: its pieces, or one :class:`_Eager` for a whole answer."""
        arguments = self._arguments(request)
        function = self.function
        result: object
        if inspect.iscoroutinefunction(function) or inspect.isasyncgenfunction(function):
            try:
                result = function(**arguments)
            except Exception as error:
                raise self._failed(error) from error
        else:
            # Call it in the worker thread: an eager sync function computes its whole
            # answer in that call.  Then iterate whatever it returned, there too.
            def run(_stop: threading.Event) -> Iterator[object]:
                returned = function(**arguments)
                if inspect.iscoroutine(returned) or inspect.isasyncgen(returned):
                    yield _Async(returned)
                elif _is_stream(returned):
                    yield from cast(Iterator[object], returned)
                else:
                    yield _Eager(returned)

            result = None
            async with aclosing(
                iterate_in_thread(run, name=f"tokentide-local {self.target}")
            ) as items:
                try:
                    async for item in items:
                        if isinstance(item, _Async):
                            result = item.value
                            break
                        if isinstance(item, _Eager):
                            yield _Eager(self._piece(item.value).text or "")
                            return
                        yield self._piece(item)
                    else:
                        return
                except BackendError:
                    raise
                except Exception as error:
                    raise self._failed(error) from error
        # An async function or async generator, run on the event loop.
        try:
            if inspect.isasyncgen(result):
                async with aclosing(result) as agen:
                    async for value in agen:
                        yield self._piece(value)
                return
            if inspect.iscoroutine(result):
                result = await result
        except BackendError:
            raise
        except Exception as error:
            raise self._failed(error) from error
        yield _Eager(self._piece(result).text or "")

    # -- the Backend protocol ----------------------------------------------------------

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[Event, None]:
        reason: str | None = None
        answer = Accumulator(self.yields, server=self.target)
        limit = self._profile.limits.max_answer_bytes if self._profile else 64 << 20
        sent = 0
        async with aclosing(self._pieces(request)) as pieces:
            async for piece in pieces:
                if isinstance(piece, _Eager):
                    text = cast(str, piece.value)
                    if text:
                        if len(text) > limit - sent or len(text.encode()) > limit - sent:
                            yield TextDelta(_clip(text, limit - sent))
                            raise self._too_long(limit)
                        sent += len(text.encode())
                        yield TextDelta(text)
                    continue
                reason = piece.finish_reason or reason
                if not piece.text:
                    continue
                try:
                    delta = answer.feed(piece.text)
                except ProtocolError as error:
                    raise LocalFunctionError(
                        error.message, server=self.target, hint=error.hint
                    ) from None
                if delta:
                    size = len(delta) if delta.isascii() else len(delta.encode())
                    if size > limit - sent:
                        yield TextDelta(_clip(delta, limit - sent))
                        raise self._too_long(limit)
                    sent += size
                    yield TextDelta(delta)
        yield Finish(reason or "stop")

    def _too_long(self, limit: int) -> LimitExceeded:
        return LimitExceeded(
            f"The answer from {self.target} passed {limit:,} bytes; stopped reading.",
            server=self.target,
            hint="Raise max_answer_bytes in the profile if this is expected.",
        )

    async def create(self, request: GenerationRequest) -> Reply:
        parts: list[str] = []
        reason: str | None = None
        answer = Accumulator("auto")
        async with aclosing(self._pieces(request)) as pieces:
            async for piece in pieces:
                if isinstance(piece, _Eager):
                    parts = [cast(str, piece.value)]
                    continue
                reason = piece.finish_reason or reason
                if piece.text is None:
                    continue
                if self.yields == "cumulative":
                    parts = [piece.text]  # the last partial is the answer, as in Muna
                elif self.yields == "delta":
                    parts.append(piece.text)
                else:  # "auto": cumulative while each piece extends the last
                    answer.feed(piece.text)
                    parts = [answer.text]
        return Reply(text="".join(parts), finish_reason=reason or "stop")


def from_profile(profile: Profile, env: Mapping[str, str]) -> LocalBackend:
    options = profile.options
    target = options.get("target")
    if not isinstance(target, str) or not target.strip():
        raise ConfigError(
            f"Profile {profile.name!r} (api 'local') needs a target.", hint=_TARGET_HINT
        )
    yields = yields_option(options, profile.name)
    target = target.strip()
    return LocalBackend(load_target(target), target=target, yields=yields, profile=profile)
