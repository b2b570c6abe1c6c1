"""Error bodies and event JSON from HTTP servers, read for a person.

:func:`error_from_body` knows every error shape the supported servers send,
:func:`parse_error_text` finds one in a JSON or event-stream body, :func:`describe_body`
names a body that has none, and :func:`loads_event` parses one event's JSON.  JSON
nested too deeply to parse (orjson stops at 1,024 levels, the stdlib raises
``RecursionError`` near 1,000) is the server's :class:`~tokentide.errors.ProtocolError`,
never a crash of tokentide.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
from orjson import loads as _fast_loads

from tokentide.backends.sse import SSEDecoder
from tokentide.errors import LimitExceeded, ProtocolError, excerpt

__all__ = [
    "TooDeep",
    "describe_body",
    "error_from_body",
    "loads_event",
    "parse_error_text",
    "parse_json",
    "parse_retry_after",
]


class TooDeep(ValueError):
    """JSON nested deeper than the parser can follow."""


def parse_json(text: str | bytes) -> Any:
    """``json.loads``, with nesting too deep to parse raised as :class:`TooDeep` (a
    ``ValueError``, so callers that treat bad JSON as "not JSON" need nothing more)."""
    try:
        return json.loads(text)
    except RecursionError:
        raise TooDeep("nested too deeply") from None


def _too_deep(server: str) -> ProtocolError:
    return ProtocolError(
        f"{server} sent an event nested too deeply to read (more than 1,000 levels of "
        "JSON); stopped reading.",
        server=server,
        hint="This is a fault of the server (or of something between it and you).",
    )


def parse_retry_after(headers: httpx.Headers, now: float | None = None) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``Retry-After`` (seconds or HTTP date)."""
    if (ms := headers.get("retry-after-ms")) is not None:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    import email.utils  # rare (an HTTP date): 1.8 ms of every start otherwise

    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def error_from_body(body: Any) -> tuple[str, str | None] | None:
    """(message, kind) from any known JSON error shape, or None if ``body`` is not one.

    OpenAI/vLLM/llama.cpp ``{"error": {"message", "type"}}``; TGI ``{"error": "...",
    "error_type": "..."}``; TGI's OpenAI route ``{"error": {"message",
    "http_status_code"}}``; Anthropic ``{"type": "error", "error": {...}}``; Ollama and
    Triton ``{"error": "..."}``; Muna ``{"errors": [{"message"}]}``; FastAPI ``{"detail"}``.
    """
    if not isinstance(body, dict):
        return None
    error = body.get("error")
    if isinstance(error, str) and error:
        return error, _str_or_none(body.get("error_type"))
    if isinstance(error, dict) and error:
        message = error.get("message") or json.dumps(error)
        kind = error.get("type") or error.get("code")
        return str(message), None if kind is None else str(kind)
    errors = body.get("errors")
    if isinstance(errors, list) and errors:
        first = errors[0]
        message = first.get("message") if isinstance(first, dict) else first
        return str(message), None
    if body.get("type") == "error" and isinstance(body.get("message"), str):
        return str(body["message"]), None
    detail = body.get("detail")
    if detail:
        return (detail if isinstance(detail, str) else json.dumps(detail)), None
    return None


def parse_error_text(text: str, content_type: str = "") -> tuple[str, str | None] | None:
    """(message, kind) from an error body: JSON of any shape :func:`error_from_body`
    knows, or an event stream whose first error-shaped event carries it (real Triton
    answers a model exception with HTTP 400 and ``data: {"error": ...}``)."""
    try:
        return error_from_body(parse_json(text))
    except ValueError:
        pass
    if "event-stream" in content_type.lower() or text.lstrip().startswith(("data:", "event:")):
        try:
            events = SSEDecoder().feed((text + "\n\n").encode())
        except LimitExceeded:
            return None
        for event in events:
            try:
                parsed = error_from_body(parse_json(event.data))
            except ValueError:
                continue
            if parsed:
                return _last_traceback_line(parsed[0]), parsed[1]
    return None


def _last_traceback_line(message: str) -> str:
    """A Python traceback sent as an error message, shortened to its last line (the
    exception), which an excerpt of the start would cut off."""
    if not message.startswith("Traceback (most recent call last)"):
        return message
    lines = [line for line in message.splitlines() if line.strip()]
    return f"{lines[-1].strip()} (the model raised an exception; its server log has the traceback)"


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _html_title(text: str) -> str | None:
    lower = text.lower()
    start = lower.find("<title>")
    end = lower.find("</title>")
    if 0 <= start < end:
        return excerpt(text[start + 7 : end], 120)
    return None


def describe_body(text: str) -> str:
    """A short description of a non-JSON error body for a message."""
    if not text.strip():
        return "an empty body"
    if "<html" in text[:500].lower() or "<!doctype html" in text[:500].lower():
        title = _html_title(text)
        return f"an HTML page ({title})" if title else "an HTML page"
    return repr(excerpt(text, 200))


def loads_event(data: str, server: str) -> Any:
    """Parse one event's JSON; a ProtocolError quotes the bad data (excerpted).

    orjson parses a token chunk about 4x faster than the stdlib, which is most of the
    per-token cost.  It refuses what the stdlib accepts in a few corners (lone surrogate
    escapes, NaN), so a refusal is retried with the stdlib before it is called malformed.
    """
    try:
        return _fast_loads(data)
    except ValueError as error:
        if "ecursion" in str(error):  # orjson: "Recursion limit reached"
            raise _too_deep(server) from None
    try:
        return json.loads(data)
    except RecursionError:
        raise _too_deep(server) from None
    except ValueError:
        raise ProtocolError(
            f"{server} sent malformed JSON in the stream: {excerpt(data, 200)!r}", server=server
        ) from None


def event_object(data: str, server: str, what: str = "event") -> dict[str, Any]:
    """One event's JSON object: :func:`loads_event`, and a :class:`ProtocolError`
    quoting the data when it is valid JSON but not an object (every dialect's events are
    objects).  ``what`` names the unit in the message ("event", "line")."""
    obj = loads_event(data, server)
    if type(obj) is not dict:
        raise ProtocolError(
            f"{server} sent an unexpected {what}: {excerpt(data, 200)!r}", server=server
        )
    return obj
