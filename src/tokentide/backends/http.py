"""The transport shared by every SSE and NDJSON backend.

A dialect (``openai.py``, ``tgi.py``, ...) subclasses :class:`HTTPBackend` and supplies
only what differs between servers:

* :meth:`~HTTPBackend.stream_call` / :meth:`~HTTPBackend.create_call`: path, body and
  headers of the streaming and the non-streaming request;
* :meth:`~HTTPBackend.new_parser`: a :class:`StreamParser` turning decoded SSE events
  (or NDJSON lines) into :mod:`events <tokentide.backends.events>`;
* :meth:`~HTTPBackend.parse_reply`: the non-streaming JSON body as a :class:`Reply`.

This module does the rest, identically for all: one ``httpx.AsyncClient`` per backend
(TLS set up only for ``https://``, which saves ~17 ms of start-up on loopback), the
status check *before* any parsing (so a 429's JSON body and ``Retry-After`` are never
hidden behind a content-type error), error bodies of every known shape turned into a
message for a person, the content-type check, byte-level decoding with size limits, and
closing the response on every exit path: when the consumer closes the generator or
cancels its task, ``async with`` closes the response and the server sees the disconnect.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from contextlib import aclosing, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import httpx
from orjson import loads as _fast_loads

from tokentide import __version__
from tokentide.backends._pool import reclaim
from tokentide.backends.base import GenerationRequest, Reply
from tokentide.backends.events import Event, Finish
from tokentide.backends.sse import NDJSONSplitter, SSEDecoder, SSEEvent
from tokentide.config.model import Profile
from tokentide.errors import (
    BackendError,
    BackendTimeout,
    CannotConnect,
    ConnectTimeout,
    HTTPStatusError,
    IncompleteStream,
    LimitExceeded,
    Overloaded,
    ProtocolError,
    ServerError,
    excerpt,
)

__all__ = [
    "HTTPBackend",
    "HTTPCall",
    "StreamParser",
    "error_from_body",
    "parse_error_text",
    "parse_retry_after",
]

_MAX_ERROR_BODY = 64 * 1024


@dataclass(frozen=True, slots=True)
class HTTPCall:
    path: str
    """Appended to the profile's base URL (or a full URL when it starts with http)."""
    body: Mapping[str, Any]
    headers: Mapping[str, str] = field(default_factory=dict)
    method: str = "POST"


class StreamParser:
    """Turns one response's decoded items into events.  One instance per response.

    ``feed`` returns the events an item produced (often none or one) and raises a
    :class:`BackendError` for an in-band error; ``end`` is called at EOF and returns the
    final events, or raises :class:`IncompleteStream` when the stream ended without its
    terminator.  Once ``done`` is true the transport stops reading.
    """

    done: bool = False

    def feed(self, item: Any) -> list[Event]:
        raise NotImplementedError

    def end(self) -> list[Event]:
        raise NotImplementedError


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
        return error_from_body(json.loads(text))
    except ValueError:
        pass
    if "event-stream" in content_type.lower() or text.lstrip().startswith(("data:", "event:")):
        try:
            events = SSEDecoder().feed((text + "\n\n").encode())
        except LimitExceeded:
            return None
        for event in events:
            try:
                parsed = error_from_body(json.loads(event.data))
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


class HTTPBackend:
    """Base of every HTTP dialect.  See the module docstring."""

    api: ClassVar[str]
    framing: ClassVar[Literal["sse", "ndjson"]] = "sse"

    def __init__(
        self,
        profile: Profile,
        env: Mapping[str, str],
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.profile = profile
        self.base_url = (profile.url or "").rstrip("/")
        self._api_key = profile.resolve_api_key(env)
        if self._api_key:
            from tokentide.logsetup import register_secret

            register_secret(self._api_key)
        self._transport = transport
        self._client: httpx.AsyncClient | None = None

    # -- what dialects provide ---------------------------------------------------------

    def stream_call(self, request: GenerationRequest) -> HTTPCall:
        raise NotImplementedError

    def create_call(self, request: GenerationRequest) -> HTTPCall | None:
        """The server's non-streaming request, or None to consume the stream instead."""
        return None

    def new_parser(self, request: GenerationRequest) -> StreamParser:
        raise NotImplementedError

    def parse_reply(self, body: Any, request: GenerationRequest) -> Reply:
        raise NotImplementedError

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}

    # -- shared -------------------------------------------------------------------------

    @property
    def name(self) -> str:
        model = f" ({self.profile.model})" if self.profile.model else ""
        return f"{self.api} {self.base_url}{model}"

    def model_or(self, request: GenerationRequest, default: str | None = None) -> str | None:
        return request.model or self.profile.model or default

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            deadlines = self.profile.deadlines
            headers = {"User-Agent": f"tokentide/{__version__}", **self.auth_headers()}
            headers.update(self.profile.headers)
            self._client = httpx.AsyncClient(
                headers=headers,
                timeout=httpx.Timeout(None, connect=deadlines.connect, write=60.0),
                # TLS context only where TLS is used: building one costs ~17 ms.
                verify=self.base_url.startswith("https:"),
                transport=self._transport,
                follow_redirects=False,
            )
        return self._client

    def url_for(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else self.base_url + path

    async def aclose(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    def _transport_error(self, error: httpx.HTTPError, url: str, *, started: bool) -> BackendError:
        server = self.base_url
        if isinstance(error, httpx.ConnectTimeout):
            return ConnectTimeout(
                f"Timed out connecting to {url} (connect deadline "
                f"{self.profile.deadlines.connect:g} s).",
                server=server,
                hint="Check that the server is running and reachable.",
            )
        if isinstance(error, httpx.ConnectError):
            return CannotConnect(
                f"Cannot connect to {url}: {error or 'connection refused'}.",
                server=server,
                hint=f"Is the server running? Check the url of profile {self.profile.name!r}.",
            )
        if isinstance(error, httpx.TimeoutException):
            return BackendTimeout(f"Timed out talking to {url}.", server=server)
        if isinstance(error, (httpx.RemoteProtocolError, httpx.ReadError)):
            if started:
                return IncompleteStream(
                    f"The connection to {server} broke in the middle of the answer "
                    f"({error or type(error).__name__}).",
                    server=server,
                )
            return CannotConnect(
                f"{url} closed the connection before answering ({error or 'no response'}).",
                server=server,
                hint="The server may have crashed or may not speak HTTP on that port.",
            )
        if isinstance(error, httpx.DecodingError):
            return ProtocolError(
                f"Could not decode the response from {url}: {error}", server=server
            )
        return BackendError(f"HTTP error talking to {url}: {error}", server=server)

    def status_error(self, response: httpx.Response, text: str) -> HTTPStatusError:
        status = response.status_code
        url = str(response.request.url)
        parsed = parse_error_text(text, response.headers.get("content-type", ""))
        detail = excerpt(parsed[0]) if parsed else describe_body(text)
        message = f"{url} answered HTTP {status} {response.reason_phrase}: {detail}"
        retry_after = parse_retry_after(response.headers)
        hint: str | None = None
        if status in (401, 403):
            where = (
                f"the environment variable {self.profile.api_key_env}"
                if self.profile.api_key_env
                else "api_key_env in the profile"
            )
            hint = f"Check the API key ({where})."
        elif status == 404:
            hint = f"Check the url ({self.base_url}) and the model name of profile {self.profile.name!r}."
        elif status in (429, 503, 529):
            hint = "The server is busy; try again later" + (
                f" (it asks to wait {retry_after:g} s)." if retry_after is not None else "."
            )
        cls = (
            Overloaded
            if status in (429, 503, 529) or (parsed and parsed[1] == "overloaded")
            else HTTPStatusError
        )
        return cls(
            message,
            status=status,
            body=text,
            server=self.base_url,
            hint=hint,
            retry_after=retry_after,
        )

    @asynccontextmanager
    async def _open(self, call: HTTPCall) -> AsyncIterator[httpx.Response]:
        url = self.url_for(call.path)
        client = self.client
        request = client.build_request(call.method, url, json=call.body, headers=dict(call.headers))
        try:
            response = await client.send(request, stream=True)
        except httpx.HTTPError as error:
            raise self._transport_error(error, url, started=False) from error
        except BaseException:  # a stop while connecting: see _pool.py
            await reclaim(client)
            raise
        aborted = True
        try:
            if response.status_code >= 400:
                text = await self._read_limited(response, url)
                raise self.status_error(response, text)
            yield response
            aborted = False
        finally:
            try:
                await response.aclose()
            except BaseException:
                aborted = True
                raise
            finally:
                if aborted:  # a stop may have interrupted httpcore's clean-up: _pool.py
                    await reclaim(client, response)

    async def _read_limited(self, response: httpx.Response, url: str) -> str:
        chunks: list[bytes] = []
        size = 0
        try:
            async for chunk in response.aiter_bytes():
                chunks.append(chunk)
                size += len(chunk)
                if size >= _MAX_ERROR_BODY:
                    break
        except httpx.HTTPError:
            pass  # a truncated error body still says something
        return b"".join(chunks).decode("utf-8", "replace")

    def _check_stream_type(self, response: httpx.Response, first: bytes) -> None:
        ctype = response.headers.get("content-type", "").lower()
        if self.framing == "sse" and "event-stream" in ctype:
            return
        if self.framing == "ndjson" and ("ndjson" in ctype or "json" in ctype):
            return
        text = first.decode("utf-8", "replace")
        if "json" in ctype or text.lstrip().startswith("{"):
            try:
                parsed = error_from_body(json.loads(text))
            except ValueError:
                parsed = None
            if parsed:
                raise ServerError(
                    f"{self.base_url} reported an error: {excerpt(parsed[0])}",
                    kind=parsed[1],
                    server=self.base_url,
                )
        if not ctype and self.framing == "sse" and text.lstrip().startswith(("data", ":", "event")):
            return  # no content type, but it looks like SSE: be lenient
        if "html" in ctype or "<html" in text[:500].lower():
            raise ProtocolError(
                f"{self.base_url} answered with {describe_body(text)} instead of a "
                f"{'token stream' if self.framing == 'sse' else 'JSON stream'}.",
                server=self.base_url,
                hint="Check the url: it may point at a web page or a proxy, not the API.",
            )
        if self.framing == "sse" and "event-stream" not in ctype:
            raise ProtocolError(
                f"{self.base_url} answered with content type {ctype or '(none)'!r}, "
                f"not an event stream: {describe_body(text)}.",
                server=self.base_url,
                hint=f"Check that api = {self.api!r} is what this server speaks.",
            )

    async def stream(self, request: GenerationRequest) -> AsyncIterator[Event]:
        """Events one by one (see :meth:`stream_batches`, which the generation uses)."""
        async with aclosing(self.stream_batches(request)) as batches:
            async for batch in batches:
                for event in batch:
                    yield event

    async def stream_batches(self, request: GenerationRequest) -> AsyncGenerator[list[Event], None]:
        """The events of each network read as one list: the per-token path stays short.

        Events parsed before an in-band error in the same read are yielded first, so the
        partial answer is never lost.
        """
        call = self.stream_call(request)
        parser = self.new_parser(request)
        limit = self.profile.limits.max_event_bytes
        decoder: SSEDecoder | NDJSONSplitter = (
            SSEDecoder(limit) if self.framing == "sse" else NDJSONSplitter(limit)
        )
        max_answer = self.profile.limits.max_answer_bytes
        received = 0
        async with self._open(call) as response:
            started = False
            chunks = aiter_chunks(response)
            try:
                async for chunk in chunks:
                    if not started:
                        started = True
                        self._check_stream_type(response, chunk)
                    received += len(chunk)
                    if received > max_answer:
                        raise LimitExceeded(
                            f"The answer from {self.base_url} passed {max_answer:,} bytes; stopped reading.",
                            server=self.base_url,
                            hint="Raise max_answer_bytes in the profile if this is expected.",
                        )
                    batch: list[Event] = []
                    try:
                        items = decoder.feed(chunk)
                        for item in items:
                            batch += parser.feed(item)
                            if parser.done:
                                break
                        if isinstance(decoder, SSEDecoder) and decoder.error_fields:
                            # llama.cpp sends `error:` then `data: [DONE]`, often in one
                            # read: the [DONE] must not count as a successful end.
                            batch = [e for e in batch if not isinstance(e, Finish)]
                            raise ServerError(
                                f"{self.base_url} reported an error: {excerpt(decoder.error_fields[0])}",
                                server=self.base_url,
                            )
                    except BackendError as error:
                        if batch:
                            yield batch
                        if isinstance(error, LimitExceeded) and error.server is None:
                            # The decoder does not know the server: name it for the user.
                            raise LimitExceeded(
                                f"{self.base_url}: {error.message}",
                                server=self.base_url,
                                hint=error.hint,
                            ) from None
                        raise
                    if batch:
                        yield batch
                    if parser.done:
                        await _drain_rest(chunks)
                        return
            except httpx.HTTPError as error:
                raise self._transport_error(
                    error, self.url_for(call.path), started=started
                ) from error
            finally:
                await chunks.aclose()
            batch = []
            try:
                for item in decoder.close():
                    batch += parser.feed(item)
                    if parser.done:
                        break
                if not parser.done:
                    batch += parser.end()
            except BackendError:
                if batch:
                    yield batch
                raise
            if batch:
                yield batch

    async def create(self, request: GenerationRequest) -> Reply:
        call = self.create_call(request)
        if call is None:
            from tokentide.backends.base import collect

            return await collect(self.stream(request))
        url = self.url_for(call.path)
        async with self._open(call) as response:
            try:
                raw = await response.aread()
            except httpx.HTTPError as error:
                raise self._transport_error(error, url, started=True) from error
        text = raw.decode("utf-8", "replace")
        try:
            body = json.loads(text)
        except ValueError:
            raise ProtocolError(
                f"{url} answered with {describe_body(text)}, not JSON.", server=self.base_url
            ) from None
        parsed = error_from_body(body)
        if parsed:
            raise ServerError(
                f"{self.base_url} reported an error: {excerpt(parsed[0])}",
                kind=parsed[1],
                server=self.base_url,
            )
        try:
            return self.parse_reply(body, request)
        except (KeyError, IndexError, TypeError, AttributeError, ValueError) as error:
            raise ProtocolError(
                f"Unexpected answer from {url}: {excerpt(json.dumps(body), 200)}",
                server=self.base_url,
            ) from error


_DRAIN_BYTES = 64 * 1024
_DRAIN_SECONDS = 0.25


async def _drain_rest(chunks: AsyncGenerator[bytes, None]) -> None:
    """After the terminator, read what little is left of the body (the chunked end),
    so the connection goes back to the pool instead of being closed: the next answer
    then skips a new TCP (and TLS) handshake.  Bounded: a server that keeps sending or
    stalls after its terminator just gets its connection closed."""
    read = 0
    try:
        async with asyncio.timeout(_DRAIN_SECONDS):
            async for chunk in chunks:
                read += len(chunk)
                if read > _DRAIN_BYTES:
                    return
    except (TimeoutError, httpx.HTTPError):
        return


async def aiter_chunks(response: httpx.Response) -> AsyncGenerator[bytes, None]:
    async for chunk in response.aiter_bytes():
        yield chunk


def loads_event(data: str, server: str) -> Any:
    """Parse one event's JSON; a ProtocolError quotes the bad data (excerpted).

    orjson parses a token chunk about 4x faster than the stdlib, which is most of the
    per-token cost.  It refuses what the stdlib accepts in a few corners (lone surrogate
    escapes, NaN), so a refusal is retried with the stdlib before it is called malformed.
    """
    try:
        return _fast_loads(data)
    except ValueError:
        pass
    try:
        return json.loads(data)
    except ValueError:
        raise ProtocolError(
            f"{server} sent malformed JSON in the stream: {excerpt(data, 200)!r}", server=server
        ) from None


def sse_data(item: SSEEvent) -> str:
    return item.data
