"""A WHATWG-conformant Server-Sent Events decoder working on bytes, and an NDJSON splitter.

Why our own and not httpx-sse's decoder (see ``docs/architecture.md``): httpx-sse 0.4.3
keeps a leading BOM (the first event is lost), dispatches events with empty data (a
keep-alive comment after any ``id:`` becomes a phantom event), accepts ``retry: +5``,
decodes with the response charset instead of always UTF-8, and ``aconnect_sse`` raises
``SSEError`` on a JSON error body, hiding the status and ``Retry-After``.  This decoder
follows ``protocols.md`` §1.3:

* lines end at CR, LF or CRLF only (never U+2028/U+0085 inside JSON), a CRLF split
  across two network chunks counts once;
* one leading UTF-8 BOM is stripped; every line is decoded as UTF-8 with invalid bytes
  replaced, and only complete lines are decoded, so a multibyte character split across
  chunks is never damaged;
* comments (``:``) are counted as keep-alives and never dispatched; an event with an
  empty data buffer is never dispatched;
* ``id`` persists across events (and is ignored if it contains NUL), ``retry`` is taken
  only when all ASCII digits;
* at EOF a partial event is discarded (the *dialect* decides whether the answer ended
  properly);
* as a documented deviation, a field named ``error`` (old llama.cpp servers wrote
  ``error: {...}`` under HTTP 200) is recorded in :attr:`SSEDecoder.error_fields` so the
  OpenAI dialect can raise it instead of silently ending.

Size limits: a line or event larger than ``max_event_bytes`` raises
:class:`~tokentide.errors.LimitExceeded`, so a hostile server cannot grow memory without
bound.  This is the framing's share of the stream's limits: the HTTP transport passes
its :class:`~tokentide.backends.stream_guard.StreamGuard`'s ``max_event_bytes`` here and
names the server in the message.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from tokentide.errors import LimitExceeded

__all__ = ["NDJSONSplitter", "SSEDecoder", "SSEEvent"]

_LINE_END = re.compile(rb"\r\n|\r|\n")
_BOM = b"\xef\xbb\xbf"


class SSEEvent(NamedTuple):
    """One dispatched event.  A NamedTuple: built once per token, it must be cheap."""

    data: str
    event: str = "message"
    id: str = ""
    retry: int | None = None


class SSEDecoder:
    """Feed bytes, get complete events.  One instance per response."""

    __slots__ = (
        "_data",
        "_data_size",
        "_event",
        "_first",
        "_last_id",
        "_max",
        "_pending",
        "_skip_lf",
        "comments",
        "error_fields",
        "retry",
    )

    def __init__(self, max_event_bytes: int = 1 << 20) -> None:
        self._max = max_event_bytes
        self._pending = b""
        self._first = True
        self._skip_lf = False
        self._data: list[bytes] = []
        self._data_size = 0
        self._event = ""
        self._last_id = ""
        self.retry: int | None = None
        self.comments = 0
        """Comment lines seen (keep-alives)."""
        self.error_fields: list[str] = []
        """Values of ``error:`` fields seen (old llama.cpp in-band errors)."""

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        if not chunk:
            return []
        if self._pending:
            chunk = self._pending + chunk
            self._pending = b""
        if self._first:
            if len(chunk) < 3 and _BOM.startswith(chunk):
                self._pending = chunk
                return []
            self._first = False
            if chunk.startswith(_BOM):
                chunk = chunk[3:]
        if self._skip_lf:
            self._skip_lf = False
            if chunk[:1] == b"\n":
                chunk = chunk[1:]
        if b"\r" in chunk:
            lines = _LINE_END.split(chunk)
            if chunk.endswith(b"\r"):
                self._skip_lf = True
        else:
            lines = chunk.split(b"\n")
        pending = lines.pop()
        if len(pending) > self._max:
            raise LimitExceeded(
                f"The server sent a line longer than {self._max:,} bytes; stopped reading.",
                hint="Raise max_event_bytes in the profile if this server really does that.",
            )
        self._pending = pending
        events: list[SSEEvent] = []
        data = self._data
        for line in lines:
            if line[:6] == b"data: ":  # the common case, inlined
                self._data_size += len(line) - 5
                if self._data_size > self._max:
                    self._too_large()
                data.append(line[6:])
            elif not line:
                if data:
                    events.append(self._dispatch())
                    data = self._data
                else:
                    self._event = ""
            elif line[0] == 0x3A:  # ":" comment
                self.comments += 1
            else:
                self._field(line)
        return events

    def _too_large(self) -> None:
        self._data.clear()
        self._data_size = 0
        raise LimitExceeded(
            f"The server sent one event larger than {self._max:,} bytes; stopped reading.",
            hint="Raise max_event_bytes in the profile if this server really does that.",
        )

    def _field(self, line: bytes) -> None:
        colon = line.find(b":")
        if colon < 0:
            name, value = line, b""
        else:
            name, value = line[:colon], line[colon + 1 :]
            if value[:1] == b" ":
                value = value[1:]
        if name == b"data":
            self._data_size += len(value) + 1
            if self._data_size > self._max:
                self._too_large()
            self._data.append(value)
        elif name == b"event":
            self._event = value.decode("utf-8", "replace")
        elif name == b"id":
            if b"\0" not in value:
                self._last_id = value.decode("utf-8", "replace")
        elif name == b"retry":
            if value.isdigit():  # bytes.isdigit is ASCII-only
                self.retry = int(value)
        elif name == b"error":
            self.error_fields.append(value.decode("utf-8", "replace"))

    def _dispatch(self) -> SSEEvent:
        data = self._data[0] if len(self._data) == 1 else b"\n".join(self._data)
        event = SSEEvent(
            data.decode("utf-8", "replace"), self._event or "message", self._last_id, self.retry
        )
        self._data = []
        self._data_size = 0
        self._event = ""
        return event

    def close(self) -> list[SSEEvent]:
        """End of stream: a partial event is discarded, as the spec says."""
        self._pending = b""
        self._data = []
        self._data_size = 0
        return []


class NDJSONSplitter:
    """Split a byte stream into lines on ``\\n`` only (never U+0085/U+2028, unlike
    ``httpx.Response.aiter_lines``); empty lines are skipped."""

    __slots__ = ("_max", "_pending")

    def __init__(self, max_line_bytes: int = 1 << 20) -> None:
        self._max = max_line_bytes
        self._pending = b""

    def feed(self, chunk: bytes) -> list[str]:
        if self._pending:
            chunk = self._pending + chunk
        lines = chunk.split(b"\n")
        self._pending = lines.pop()
        if len(self._pending) > self._max:
            raise LimitExceeded(f"The server sent a line longer than {self._max:,} bytes.")
        return [line.decode("utf-8", "replace") for line in lines if line.strip()]

    def close(self) -> list[str]:
        """A final line without ``\\n`` still counts (some servers omit the last one)."""
        rest, self._pending = self._pending, b""
        return [rest.decode("utf-8", "replace")] if rest.strip() else []
