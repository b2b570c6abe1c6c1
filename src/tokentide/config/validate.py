"""Checks of single config values, each raising a :class:`ConfigError` that says where.

``where`` is the prefix of the message, ``"path:line: "`` (or ``""`` for a command-line
flag), or a function that returns it: finding a line costs a scan of the file, so it is
done only for a value that is wrong.  Every check is done when the config loads, so a bad value is an exit-2 error
that names its line, not a failure at request time or "a bug in tokentide".
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final, TypeAlias

from tokentide.errors import ConfigError

__all__ = [
    "MAX_DEPTH",
    "MAX_TIMEOUT",
    "Where",
    "at",
    "check_data",
    "check_header",
    "check_url",
    "count",
    "did_you_mean",
    "number",
    "string",
    "table",
    "timeout",
]

MAX_TIMEOUT: Final = 366 * 86400.0
"""Longest deadline a profile may set (a year); ``false`` turns a deadline off."""

MAX_DEPTH: Final = 32
"""Deepest nesting of tables and arrays in ``params`` and backend options (JSON encoders
and servers give up far earlier than Python's recursion limit)."""

HTTP_SCHEMES: Final = ("http", "https")
_HEADER_NAME: Final = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_CONTROL: Final = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_URL_BAD: Final = re.compile(r"[\x00-\x20\x7f-\x9f]")


Where: TypeAlias = str | Callable[[], str]
"""The prefix of an error message, or a function that returns it."""


def at(where: Where) -> str:
    return where if isinstance(where, str) else where()


def did_you_mean(word: str, names: Iterable[str]) -> str:
    """`` Did you mean 'url'?`` for a misspelt key, or ``""`` when nothing is close."""
    from difflib import get_close_matches  # only for a key that is wrong

    close = get_close_matches(word, sorted(names), n=1, cutoff=0.6)
    return f" Did you mean {close[0]!r}?" if close else ""


def string(value: Any, what: str, where: Where) -> str:
    if not isinstance(value, str):
        raise ConfigError(
            f'{at(where)}{what} must be a string in quotes, like {what} = "...", not {value!r}.'
        )
    return value


def table(value: Any, what: str, where: Where) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f'{at(where)}{what} must be a table, like {what} = {{ key = "value" }}.')
    return value


def number(
    value: Any,
    what: str,
    where: Where,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
) -> float:
    """A finite number (TOML ``nan``/``inf`` are not), within ``[minimum, maximum]``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{at(where)}{what} must be a number, not {value!r}.")
    result = float(value)
    if not math.isfinite(result):
        raise ConfigError(f"{at(where)}{what} must be a finite number, not {value!r}.")
    if minimum is not None and result < minimum:
        raise ConfigError(f"{at(where)}{what} must be at least {minimum:g}, not {value!r}.")
    if maximum is not None and result > maximum:
        raise ConfigError(f"{at(where)}{what} must be at most {maximum:g}, not {value!r}.")
    return result


def timeout(value: Any, what: str, where: Where) -> float | None:
    """Seconds, more than 0 and at most :data:`MAX_TIMEOUT`; ``false`` means no deadline."""
    if value is False:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(
            f"{at(where)}{what} must be a number of seconds (or false to turn it off), not {value!r}."
        )
    seconds = float(value)
    if not math.isfinite(seconds) or not 0 < seconds <= MAX_TIMEOUT:
        raise ConfigError(
            f"{at(where)}{what} must be more than 0 and at most {MAX_TIMEOUT:.0f} seconds, "
            f"not {value!r}.",
            hint=f"For no deadline at all write {what} = false.",
        )
    return seconds


def count(
    value: Any, what: str, where: Where, *, minimum: int = 0, maximum: int | None = None
) -> int:
    """A whole number within ``[minimum, maximum]``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{at(where)}{what} must be a whole number, not {value!r}.")
    if value < minimum:
        raise ConfigError(f"{at(where)}{what} must be at least {minimum}, not {value!r}.")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{at(where)}{what} must be at most {maximum}, not {value!r}.")
    return value


def check_url(url: str, where: Where, *, grpc: bool = False) -> None:
    """An http(s) base URL with a host and a port in 1–65535 (a gRPC target: a valid port).

    IPv6 literals (``http://[::1]:8080/v1``) and query strings (``?api-version=...``) are
    accepted; the transport keeps the query when it appends a path.
    """
    from urllib.parse import urlsplit

    if bad := _URL_BAD.search(url):
        raise ConfigError(
            f"{at(where)}url {url!r} contains {'a space' if bad.group() == ' ' else 'a control character'}.",
            hint="A URL has no spaces or control characters (a space is written %20).",
        )
    if grpc:
        _check_grpc_target(url, where)
        return
    try:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in HTTP_SCHEMES or not url[len(scheme) + 1 :].startswith("//"):
            raise ConfigError(at(where) + _scheme_message(url, parts.scheme), hint=_URL_HINT)
        if not parts.hostname:
            raise ConfigError(f"{at(where)}url {url!r} has no host.")
        port = parts.port
    except ValueError as error:  # a bad [IPv6] literal, a port out of range or not a number
        if "port" in str(error).lower():
            raise ConfigError(
                f"{at(where)}url {url!r}: the port must be a number from 1 to 65535."
            ) from None
        raise ConfigError(
            f"{at(where)}url {url!r} is not a valid URL: {error}.",
            hint="An IPv6 address is written in brackets, like http://[::1]:8080/v1.",
        ) from None
    if port == 0:
        raise ConfigError(f"{at(where)}url {url!r}: the port must be from 1 to 65535, not 0.")


_URL_HINT: Final = 'Write it like url = "http://127.0.0.1:8000/v1".'
_NOT_WEB: Final = frozenset({"javascript", "data", "file", "mailto", "about", "vbscript"})


def _scheme_message(url: str, scheme: str) -> str:
    if "://" in url or scheme.lower() in _NOT_WEB:
        return (
            f"url {url!r}: tokentide talks to servers over http:// or https:// only, "
            f"not {scheme + ':' if scheme else 'this'}."
        )
    return f"url {url!r} must start with http:// or https://."


def _check_grpc_target(url: str, where: Where) -> None:
    """The port of ``host:port`` / ``grpc[s]://host:port``; the backend explains every
    other shape (an http URL, a path) when it is built."""
    if url.startswith("unix:"):
        return
    scheme, sep, rest = url.partition("://")
    if not sep:
        rest = url
    elif scheme.lower() not in ("grpc", "grpcs"):
        return
    host = rest.rstrip("/")
    if "/" in host:
        return
    bare = host.rsplit("]", 1)[-1]  # an [IPv6] literal has colons of its own
    if ":" in bare:
        port = bare.rsplit(":", 1)[1]
        if not port.isdigit() or not 1 <= int(port) <= 65535:
            raise ConfigError(
                f"{at(where)}url {url!r}: the port must be a number from 1 to 65535, not {port!r}."
            )


def check_header(name: str, value: Any, where: Where) -> str:
    """A header (or gRPC metadata) name and value that can be sent as written."""
    if not _HEADER_NAME.fullmatch(name):
        raise ConfigError(
            f"{at(where)}header name {name!r} is not valid: letters, digits and -_.!#$%&'*+^`|~ "
            "only, no spaces or colons."
        )
    text = string(value, f"headers.{name}", where)
    if _CONTROL.search(text):
        raise ConfigError(
            f"{at(where)}headers.{name}: the value contains a line break or control character.",
            hint="A header value is one line of text.",
        )
    return text


def check_data(value: Any, what: str, where: Where) -> None:
    """Values sent as they are (``params``, backend options): finite numbers only, nested
    at most :data:`MAX_DEPTH` deep.  Iterative, so no nesting can exhaust the stack."""
    stack: list[tuple[Any, str, int]] = [(value, what, 0)]
    while stack:
        item, name, depth = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            raise ConfigError(
                f"{at(where)}{name} must be a finite number, not {item!r} (JSON cannot carry it)."
            )
        if isinstance(item, Mapping | list):
            if depth >= MAX_DEPTH:
                raise ConfigError(f"{at(where)}{what} is nested more than {MAX_DEPTH} levels deep.")
            children = item.items() if isinstance(item, Mapping) else enumerate(item)
            for key, child in children:
                stack.append(
                    (
                        child,
                        f"{name}.{key}" if isinstance(key, str) else f"{name}[{key}]",
                        depth + 1,
                    )
                )
