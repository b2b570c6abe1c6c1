"""The ``--debug`` log for bug reports, and the rule that secrets never reach it.

:func:`setup_debug_log` writes every DEBUG record of tokentide, httpx, httpcore and grpc
to a private file (mode 0600; a directory it creates gets 0700).  Every record passes a
:class:`RedactingFilter` first, which

1. runs the message (and any traceback) through :func:`tokentide.sanitize.sanitize`, so a
   log opened with ``cat`` or ``less -R`` cannot inject escape sequences; then
2. :func:`redact`: replaces with ``***`` every value registered with
   :func:`register_secret` (the config layer registers each API key it resolves), the
   values of ``Authorization``, ``Proxy-Authorization``, ``api-key``, ``x-api-key``,
   ``Cookie`` and ``Set-Cookie`` in the shapes httpx and httpcore log them (header lines,
   ``(b'authorization', b'Bearer …')`` tuples, ``{'cookie': '…'}`` dicts), ``Bearer …``/
   ``Basic …`` credentials, and common key shapes (``sk-…``, ``hf_…``, JWTs …).

Sanitising comes first so a secret split by an escape sequence is joined before it is
matched.  Evidence for all of this: reliability.md §4 (openai-python #1082 logged the
``api-key`` header at DEBUG; rossoctl/examples PR #188; quarkus-langchain4j #264 only
matched ``sk-``).

Python logging applies a *logger's* filters only to records logged on that logger, not
to records propagating from children (``httpx`` → root), so the filter is attached to the
handlers: the debug file handler and every handler already on the root logger when
:func:`setup_debug_log` runs.  A handler added later must add ``RedactingFilter()``
itself.
"""

from __future__ import annotations

import io
import logging
import os
import shlex
import stat
import sys
import threading
import time
from pathlib import Path
from typing import Final

from tokentide.redact import MIN_SECRET_LENGTH, redact, register_secret
from tokentide.sanitize import sanitize

__all__ = [
    "DEBUG_LOGGERS",
    "MIN_SECRET_LENGTH",
    "RedactingFilter",
    "check_private",
    "close_debug_log",
    "redact",
    "register_secret",
    "setup_debug_log",
]

DEBUG_LOGGERS: Final = ("tokentide", "httpx", "httpcore", "grpc", "mcp")
"""Loggers :func:`setup_debug_log` sets to DEBUG."""


def _clean(text: str) -> str:
    return redact(sanitize(text))


class RedactingFilter(logging.Filter):
    """Sanitises and redacts a record in place (message, traceback, stack); never drops one."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_tide_redacted", False):
            return True  # the next handler sees the same, already cleaned record
        try:
            message = record.getMessage()
        except Exception as exc:  # a bad format string must not hide the record
            message = f"{record.msg!r} (log formatting failed: {exc!r})"
        record.msg = _clean(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = _clean(record.exc_text)
        record.exc_info = None  # the formatter would format it again, unredacted
        if record.stack_info:
            record.stack_info = _clean(record.stack_info)
        setattr(record, "_tide_redacted", True)  # noqa: B010
        return True


class _PrivateFileHandler(logging.FileHandler):
    """A FileHandler whose file is created 0600 from the first moment (no chmod window)."""

    def _open(self) -> io.TextIOWrapper:
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)
        flags |= getattr(os, "O_NOFOLLOW", 0)
        fd = os.open(self.baseFilename, flags, 0o600)
        try:
            if os.name == "posix":
                os.fchmod(fd, 0o600)  # an existing file may have been wider
            return open(fd, "a", encoding="utf-8", errors="backslashreplace")
        except BaseException:
            os.close(fd)
            raise


class _Installed:
    def __init__(self, handler: logging.Handler, levels: dict[str, int]) -> None:
        self.handler = handler
        self.levels = levels
        self.filters: list[tuple[logging.Filterer, logging.Filter]] = []


_installed: _Installed | None = None
_install_lock = threading.Lock()


def _default_path() -> Path:
    from tokentide.config.paths import data_dir

    stamp = time.strftime("%Y%m%d-%H%M%S")
    return data_dir() / "logs" / f"debug-{stamp}-{os.getpid()}.log"


def _private_dir(directory: Path, *, ours: bool) -> None:
    """Create ``directory`` 0700; tighten it too when it is tokentide's own log directory."""
    if not directory.exists():
        directory.mkdir(parents=True, mode=0o700)
        ours = True
    if ours and os.name == "posix":
        os.chmod(directory, 0o700)


def setup_debug_log(path: Path | None = None) -> Path:
    """Write a redacted DEBUG log to ``path`` (default: ``<data dir>/logs/debug-….log``).

    Returns the path written to.  Calling it again replaces the previous debug log;
    :func:`close_debug_log` removes it.
    """
    global _installed
    default = path is None
    target = (_default_path() if path is None else Path(path).expanduser()).absolute()
    _private_dir(target.parent, ours=default)

    handler = _PrivateFileHandler(target, encoding="utf-8")
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(threadName)s] %(message)s")
    )
    redacting = RedactingFilter()
    handler.addFilter(redacting)

    with _install_lock:
        if _installed is not None:
            _uninstall(_installed)
        root = logging.getLogger()
        installed = _Installed(handler, {})
        for existing in root.handlers:
            existing.addFilter(redacting)
            installed.filters.append((existing, redacting))
        root.addFilter(redacting)
        installed.filters.append((root, redacting))
        root.addHandler(handler)
        for name in DEBUG_LOGGERS:
            logger = logging.getLogger(name)
            installed.levels[name] = logger.level
            logger.setLevel(logging.DEBUG)
        _installed = installed
    logging.getLogger("tokentide").debug(
        "debug log started: tokentide, python %s, %s", sys.version.split()[0], sys.platform
    )
    return target


def _uninstall(installed: _Installed) -> None:
    root = logging.getLogger()
    root.removeHandler(installed.handler)
    installed.handler.close()
    for owner, flt in installed.filters:
        owner.removeFilter(flt)
    for name, level in installed.levels.items():
        logging.getLogger(name).setLevel(level)


def close_debug_log() -> None:
    """Remove the debug log handler and restore the logger levels; a no-op without one."""
    global _installed
    with _install_lock:
        if _installed is not None:
            _uninstall(_installed)
            _installed = None


def check_private(path: Path) -> str | None:
    """A warning when ``path`` (a file or directory holding a secret) is open to others.

    ssh-style: the text names the mode and the ``chmod`` that fixes it.  None when the
    path is private, does not exist, or the platform has no POSIX modes.
    """
    if os.name != "posix":
        return None
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    mode = stat.S_IMODE(st.st_mode)
    if not mode & 0o077:
        return None
    is_dir = stat.S_ISDIR(st.st_mode)
    wanted = "700" if is_dir else "600"
    who = "readable by others" if mode & 0o044 else "writable by others"
    quoted = shlex.quote(str(path))
    return sanitize(
        f"{path} holds secrets and is {who} (mode {mode:04o}); run: chmod {wanted} {quoted}"
    )
