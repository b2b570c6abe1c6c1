"""Keeping a predictor (``api = "local"``) away from tokentide's own stdout, stderr and exit.

A predictor is the user's code running inside tokentide.  Two things it may do would
otherwise reach past its answer:

* **print.**  ``tide ask`` writes the answer to stdout; a predictor's ``print`` would land
  in the same pipe, unsanitised, between pieces of the answer.  While a predictor runs,
  ``sys.stdout`` and ``sys.stderr`` are :class:`_Proxy` objects that send what *the
  predictor* writes to the debug log (logger ``tokentide.predictor``, DEBUG, sanitised and
  redacted by :mod:`tokentide.logsetup`; dropped when there is no debug log) and pass
  everything else through to the real stream.  "The predictor" is decided per context
  (:mod:`contextvars`): the worker thread a sync predictor runs in, the steps of an async
  predictor on the event loop (and the tasks it starts), and the import of its file.  The
  main thread keeps writing to the real stdout even while a predictor prints.
* **exit.**  ``sys.exit()`` and ``KeyboardInterrupt`` are ``BaseException``, so a plain
  ``except Exception`` lets them end the app (or, in a worker thread, end the answer
  without a word).  :func:`exit_error` turns them into :class:`PredictorExited`, an error
  of that one answer.

Limits, documented in ``docs/backends-local.md``: writes to the file descriptors
themselves (``os.write(1, ...)``, ``sys.__stdout__``, C extensions) and prints from
threads the predictor starts itself are not redirected.

The proxies are installed when the first predictor starts and the real streams put back
when the last one ends, only if ``sys.stdout``/``sys.stderr`` are still the proxies by
then (Textual and pytest replace them too).  Proxy objects are kept and reused, never
freed (see ``_proxies``).  Nothing happens at import.
"""

from __future__ import annotations

import contextvars
import logging
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Final, TextIO

from tokentide.errors import LocalFunctionError

__all__ = [
    "PREDICTOR_LOG",
    "Capture",
    "PredictorExited",
    "capturing",
    "exit_error",
    "installed",
    "isolated",
]

PREDICTOR_LOG: Final = "tokentide.predictor"
"""The logger a predictor's prints go to."""

_LINE_LIMIT: Final = 64 << 10
"""Characters of one line kept in the log; a partial line this long is logged without
waiting for its end."""

_log = logging.getLogger(PREDICTOR_LOG)


class PredictorExited(LocalFunctionError):
    """A predictor called ``sys.exit()`` or raised ``KeyboardInterrupt``: that answer ends
    with this error; tokentide goes on."""


def exit_error(error: SystemExit | KeyboardInterrupt, target: str) -> PredictorExited:
    """The error of an answer whose predictor tried to end the program."""
    if isinstance(error, SystemExit):
        what = "called sys.exit()" if error.code is None else f"called sys.exit({error.code!r})"
    else:
        what = "raised KeyboardInterrupt"
    return PredictorExited(
        f"{target} {what}; its answer ends here.",
        server=target,
        hint="A predictor cannot end tokentide: return, or raise an exception, to end "
        "an answer early.",
    )


class Capture:
    """Where one predictor's writes go: the debug log, one record per line."""

    __slots__ = ("_partial", "_sizes", "emitting", "target")

    def __init__(self, target: str) -> None:
        self.target = target
        self._partial: dict[str, list[str]] = {}
        self._sizes: dict[str, int] = {}
        self.emitting = False
        """True while a record is being logged: a handler that writes to sys.stderr must
        reach the real stream, not come back here."""

    def write(self, stream: str, text: str) -> None:
        if not text or not _log.isEnabledFor(logging.DEBUG):
            return  # no debug log: dropped, not kept
        partial = self._partial.setdefault(stream, [])
        *complete, rest = text.split("\n")
        if complete:
            self._emit(stream, "".join(partial) + complete[0])
            partial.clear()
            self._sizes[stream] = 0
            for line in complete[1:]:
                self._emit(stream, line)
        if rest:
            partial.append(rest)
            self._sizes[stream] = size = self._sizes.get(stream, 0) + len(rest)
            if size > _LINE_LIMIT:
                self._emit(stream, "".join(partial))
                partial.clear()
                self._sizes[stream] = 0

    def flush(self) -> None:
        """Log every unfinished line."""
        for stream, partial in self._partial.items():
            if partial:
                self._emit(stream, "".join(partial))
                partial.clear()
                self._sizes[stream] = 0

    def _emit(self, stream: str, line: str) -> None:
        if not _log.isEnabledFor(logging.DEBUG):
            return
        if len(line) > _LINE_LIMIT:
            line = f"{line[:_LINE_LIMIT]}... ({len(line) - _LINE_LIMIT:,} more characters)"
        self.emitting = True
        try:
            _log.debug("%s wrote to %s: %s", self.target, stream, line)
        finally:
            self.emitting = False


_current: contextvars.ContextVar[Capture | None] = contextvars.ContextVar(
    "tokentide_predictor_capture", default=None
)


class _BinaryProxy:
    """``sys.stdout.buffer`` as a predictor sees it: bytes go to its capture, decoded."""

    def __init__(self, capture: Capture, stream: str) -> None:
        self._capture = capture
        self._stream = stream

    def write(self, data: bytes) -> int:
        self._capture.write(self._stream, bytes(data).decode("utf-8", "replace"))
        return len(data)

    def flush(self) -> None:
        pass


class _Proxy:
    """``sys.stdout``/``sys.stderr`` while predictors run: a predictor's writes go to its
    :class:`Capture`; everyone else's to the real stream."""

    def __init__(self, real: TextIO, name: str) -> None:
        self.real = real
        self._name = name

    def _capture(self) -> Capture | None:
        capture = _current.get()
        return None if capture is None or capture.emitting else capture

    def write(self, text: str) -> int:
        capture = self._capture()
        if capture is None:
            return self.real.write(text)
        capture.write(self._name, str(text))
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        if self._capture() is None:
            self.real.flush()

    @property
    def buffer(self) -> Any:
        capture = self._capture()
        if capture is None:
            return self.real.buffer
        return _BinaryProxy(capture, self._name)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


_lock = threading.Lock()
_users = 0
_proxies: dict[tuple[str, int], _Proxy] = {}
"""Every proxy ever installed, by stream name and the id of the stream it wraps; reused,
never freed.  CPython 3.11's ``print`` holds ``sys.stdout`` as a *borrowed* reference:
were the last reference to a proxy dropped by another thread while ``print`` wrote to
it, that ``print`` would use freed memory (a segfault, seen in the tests).  A proxy also
keeps the stream it replaced alive, for the same reason."""


def _install() -> None:
    global _users
    with _lock:
        _users += 1
        for name in ("stdout", "stderr"):
            stream = getattr(sys, name)
            if stream is None or isinstance(stream, _Proxy):
                continue
            proxy = _proxies.get((name, id(stream)))
            if proxy is None:
                proxy = _proxies[name, id(stream)] = _Proxy(stream, name)
            setattr(sys, name, proxy)


def _uninstall() -> None:
    global _users
    with _lock:
        _users -= 1
        if _users:
            return
        for name in ("stdout", "stderr"):
            stream = getattr(sys, name)
            if isinstance(stream, _Proxy):  # still ours: nobody replaced it meanwhile
                setattr(sys, name, stream.real)


@contextmanager
def capturing(capture: Capture) -> Iterator[None]:
    """Send this context's writes to ``capture`` (the proxies must be installed)."""
    token = _current.set(capture)
    try:
        yield
    finally:
        try:
            _current.reset(token)
        except ValueError:  # closed from another context (a generator finalised late)
            _current.set(None)


@contextmanager
def installed() -> Iterator[None]:
    """Keep the proxies installed for as long as this block runs."""
    _install()
    try:
        yield
    finally:
        _uninstall()


@contextmanager
def isolated(target: str) -> Iterator[Capture]:
    """Run a block as predictor ``target``: its writes go to the debug log."""
    capture = Capture(target)
    with installed(), capturing(capture):
        try:
            yield capture
        finally:
            capture.flush()
