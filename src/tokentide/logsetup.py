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
import re
import shlex
import stat
import sys
import threading
import time
from pathlib import Path
from typing import Final

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

DEBUG_LOGGERS: Final = ("tokentide", "httpx", "httpcore", "grpc")
"""Loggers :func:`setup_debug_log` sets to DEBUG."""

MIN_SECRET_LENGTH: Final = 8
"""Shorter registered values are ignored: redacting ``abc`` everywhere would ruin the log."""

MASK: Final = "***"

_HEADER_NAMES: Final = (
    r"proxy-authorization|authorization|x-api-key|api[-_]?key|set-cookie|cookie"
    r"|access[-_]token|refresh[-_]token|client[-_]secret|password"
)
# name, then a separator as it appears in a header line (``Authorization: x``), a bytes
# or str tuple (``(b'authorization', b'x')``), a dict/JSON (``'cookie': 'x'``) or a
# keyword (``api_key='x'``), then the value up to a quote or the end of the line.
_HEADER_VALUE: Final = re.compile(
    rf"(?i)(?P<key>\b(?:{_HEADER_NAMES})\b)(?P<sep>['\"]?\s*[:=,]\s*(?-i:b)?['\"]?)(?P<value>[^'\"\r\n]+)"
)
_CREDENTIAL: Final = re.compile(r"(?i)\b(?P<scheme>Bearer|Basic|Token)\s+[A-Za-z0-9._~+/=-]{6,}")
_KEY_SHAPES: Final = re.compile(
    r"\b(?:"
    r"sk-[A-Za-z0-9_-]{8,}"  # OpenAI (sk-, sk-proj-), Anthropic (sk-ant-), many proxies
    r"|hf_[A-Za-z0-9]{16,}"  # Hugging Face
    r"|gsk_[A-Za-z0-9]{16,}"  # Groq
    r"|xai-[A-Za-z0-9]{16,}"  # xAI
    r"|AIza[0-9A-Za-z_-]{30,}"  # Google
    r"|gh[pousr]_[A-Za-z0-9]{20,}"  # GitHub
    r"|eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+"  # JWT
    r")"
)

_secrets_lock = threading.Lock()
_secrets: set[str] = set()
_secrets_re: re.Pattern[str] | None = None


def register_secret(value: str) -> None:
    """Make :func:`redact` replace ``value`` wherever it appears.

    The config layer calls this with every API key it resolves.  Values shorter than
    :data:`MIN_SECRET_LENGTH` (after stripping whitespace) are ignored.
    """
    global _secrets_re
    value = value.strip()
    if len(value) < MIN_SECRET_LENGTH:
        return
    with _secrets_lock:
        if value in _secrets:
            return
        _secrets.add(value)
        ordered = sorted(_secrets, key=len, reverse=True)  # longest first
        _secrets_re = re.compile("|".join(re.escape(s) for s in ordered))


def _forget_secrets() -> None:
    """Empty the registry (tests)."""
    global _secrets_re
    with _secrets_lock:
        _secrets.clear()
        _secrets_re = None


def _mask_header(m: re.Match[str]) -> str:
    return f"{m['key']}{m['sep']}{MASK}"


def redact(text: str) -> str:
    """``text`` with registered secrets, credential headers and key-shaped strings masked."""
    pattern = _secrets_re
    if pattern is not None:
        text = pattern.sub(MASK, text)
    text = _HEADER_VALUE.sub(_mask_header, text)
    text = _CREDENTIAL.sub(lambda m: f"{m['scheme']} {MASK}", text)
    return _KEY_SHAPES.sub(MASK, text)


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
