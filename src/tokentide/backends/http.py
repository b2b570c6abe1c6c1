"""The transport shared by every SSE and NDJSON backend.

A dialect (``openai.py``, ``tgi.py``, ...) subclasses :class:`HTTPBackend` and supplies
only what differs between servers:

* :meth:`~HTTPBackend.stream_call` / :meth:`~HTTPBackend.create_call`: path, body and
  headers of the streaming and the non-streaming request;
* :meth:`~HTTPBackend.new_parser`: a :class:`StreamParser` turning decoded SSE events
  (or NDJSON lines) into :mod:`events <tokentide.backends.events>`;
* :meth:`~HTTPBackend.parse_reply`: the non-streaming JSON body as a :class:`Reply`.

This module does the rest, identically for all: one ``httpx.AsyncClient`` per backend
for the profile's own origin (its certificate store loaded only when that origin is
https, which saves ~17 ms of start-up on loopback) and a second one, never carrying
credentials and always verifying TLS, for any other URL a server names
(:mod:`~tokentide.backends.http_origin` has the rule); no redirect is followed; the
status check *before* any parsing (so a 429's JSON body and ``Retry-After`` are never
hidden behind a content-type error), error bodies of every known shape turned into a
message for a person, the content-type check, bounded reading of every body before
it is inflated (:mod:`~tokentide.backends.http_body`) with the limits and words of the
stream's :class:`~tokentide.backends.stream_guard.StreamGuard` (which also turns a
dialect's cumulative pieces into deltas), byte-level decoding, and
closing the response on every exit path: when the consumer closes the generator or
cancels its task, ``async with`` closes the response and the server sees the disconnect.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator, Mapping
from contextlib import aclosing, asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import httpx

from tokentide import __version__
from tokentide.backends._cumulative import Yields
from tokentide.backends._pool import reclaim
from tokentide.backends.base import GenerationRequest, Reply
from tokentide.backends.events import Event, Finish
from tokentide.backends.http_body import ACCEPT_ENCODING, aiter_bounded, read_bounded
from tokentide.backends.http_errors import (
    describe_body,
    error_from_body,
    event_object,
    loads_event,
    parse_error_text,
    parse_json,
    parse_retry_after,
)
from tokentide.backends.http_failures import check_stream_type, status_error, transport_error
from tokentide.backends.http_origin import BaseURL
from tokentide.backends.sse import NDJSONSplitter, SSEDecoder, SSEEvent
from tokentide.backends.stream_guard import StreamGuard, Wording, answer_too_long
from tokentide.config.model import Profile
from tokentide.errors import (
    BackendError,
    HTTPStatusError,
    LimitExceeded,
    ProtocolError,
    ServerError,
    excerpt,
)

__all__ = [
    "HTTPBackend",
    "HTTPCall",
    "StreamParser",
    "describe_body",
    "error_from_body",
    "event_object",
    "loads_event",
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
    guard: StreamGuard | None = None
    """A parser whose pieces of text pass a :class:`StreamGuard` (a dialect with a
    ``yields`` style) holds it here; the transport then uses that one guard for the
    whole stream.  Other parsers leave it None and the transport makes its own."""

    def feed(self, item: Any) -> list[Event]:
        raise NotImplementedError

    def end(self) -> list[Event]:
        raise NotImplementedError


class HTTPBackend:
    """Base of every HTTP dialect.  See the module docstring."""

    api: ClassVar[str]
    framing: ClassVar[Literal["sse", "ndjson"]] = "sse"
    yields: Yields = "delta"
    """How the server sends text (dialects with a ``yields`` option set it)."""

    def __init__(
        self,
        profile: Profile,
        env: Mapping[str, str],
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.profile = profile
        self._base = BaseURL.parse(profile.url, profile.name)
        self.base_url = self._base.text
        self._api_key = profile.resolve_api_key(env)
        if self._api_key:
            from tokentide.logsetup import register_secret

            register_secret(self._api_key)
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self._foreign: httpx.AsyncClient | None = None

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

    def _new_client(self, headers: dict[str, str], *, verify: bool) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            headers={
                "User-Agent": f"tokentide/{__version__}",
                "Accept-Encoding": ACCEPT_ENCODING,  # what http_body.py can bound
                **headers,
            },
            timeout=httpx.Timeout(None, connect=self.profile.deadlines.connect, write=60.0),
            verify=verify,
            transport=self._transport,
            follow_redirects=False,  # a redirect would take the key elsewhere
        )

    @property
    def client(self) -> httpx.AsyncClient:
        """The client for the base URL's origin, with the key and the profile's headers.

        It only ever sends to that origin (see :meth:`client_for`), so its scheme is the
        base's: the certificate store is loaded (~17 ms) only when that is https, and an
        https base is verified however its scheme is spelt (``HTTPS://`` too)."""
        if self._client is None:
            headers = {**self.auth_headers(), **self.profile.headers}
            self._client = self._new_client(headers, verify=self._base.is_https)
        return self._client

    def client_for(self, url: str) -> httpx.AsyncClient:
        """The client allowed to fetch ``url``: the credentialed one on the base URL's
        origin; for any other URL a client without credentials that always verifies
        TLS, after refusing non-http(s) URLs and plain http under an https base."""
        if self._base.same_origin(url):
            return self.client
        self._base.check_foreign(url)
        if self._foreign is None:
            self._foreign = self._new_client({}, verify=True)
        return self._foreign

    def url_for(self, path: str) -> str:
        return self._base.url_for(path)

    async def aclose(self) -> None:
        for name in ("_client", "_foreign"):
            client = getattr(self, name)
            if client is not None:
                setattr(self, name, None)
                await client.aclose()

    @contextmanager
    def errors(self, url: str, *, started: bool | Callable[[], bool] = False) -> Iterator[None]:
        """The one place httpx's exceptions become tokentide's: a transport failure
        while talking to ``url`` is raised as the :class:`BackendError` it means
        (``started``: whether the answer had begun, or a callable that says so when
        the failure happens)."""
        try:
            yield
        except httpx.HTTPError as error:
            begun = started() if callable(started) else started
            raise transport_error(error, url, self.profile, self.base_url, started=begun) from error

    def status_error(self, response: httpx.Response, text: str) -> HTTPStatusError:
        return status_error(response, text, self.profile, self.base_url)

    @asynccontextmanager
    async def _open(self, call: HTTPCall) -> AsyncIterator[httpx.Response]:
        url = self.url_for(call.path)
        client = self.client_for(url)
        request = client.build_request(call.method, url, json=call.body, headers=dict(call.headers))
        async with self.send(client, request) as response:
            yield response

    @asynccontextmanager
    async def send(
        self, client: httpx.AsyncClient, request: httpx.Request
    ) -> AsyncIterator[httpx.Response]:
        """Send ``request``; an error status (or a redirect, never followed) is raised
        with its bounded body; the response is closed on every exit path."""
        url = str(request.url)
        try:
            with self.errors(url):
                response = await client.send(request, stream=True)
        except BackendError:
            raise
        except BaseException:  # a stop while connecting: see _pool.py
            await reclaim(client)
            raise
        aborted = True
        try:
            if response.status_code >= 300:
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
        """An error body, cut at 64 KiB before it is inflated past that."""
        raw = await read_bounded(response, _MAX_ERROR_BODY, self.base_url)
        return raw.decode("utf-8", "replace")

    def stream_guard(self) -> StreamGuard:
        """The limits (and ``yields`` style) of one streamed answer: see
        :mod:`~tokentide.backends.stream_guard`."""
        return StreamGuard(
            self.profile.limits, self.yields, wording=Wording(self.base_url, self.base_url)
        )

    def _too_long(self, what: str | None = None) -> LimitExceeded:
        """A body (the answer, or ``what``) past ``max_answer_bytes``, worded as the
        stream guard words it."""
        what = what or f"The answer from {self.base_url}"
        return answer_too_long(what, self.profile.limits.max_answer_bytes, self.base_url)

    def _check_stream_type(self, response: httpx.Response, first: bytes) -> None:
        check_stream_type(response, first, self.framing, self.api, self.base_url)

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[Event, None]:
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
        guard = parser.guard or self.stream_guard()
        limit = guard.max_event
        decoder: SSEDecoder | NDJSONSplitter = (
            SSEDecoder(limit) if self.framing == "sse" else NDJSONSplitter(limit)
        )
        async with self._open(call) as response:
            started = False
            # The body is bounded before it is inflated, with the guard's limit and words.
            chunks = aiter_bounded(response, guard.max_answer, self.base_url, guard.too_long)
            try:
                with self.errors(self.url_for(call.path), started=lambda: started):
                    async for chunk in chunks:
                        if not started:
                            started = True
                            self._check_stream_type(response, chunk)
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
                        if guard.exhausted:  # a piece was cut to fit (and yielded above)
                            raise guard.too_long()
                        if parser.done:
                            await _drain_rest(chunks)
                            return
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
            if guard.exhausted:
                raise guard.too_long()

    async def create(self, request: GenerationRequest) -> Reply:
        call = self.create_call(request)
        if call is None:
            from tokentide.backends.base import collect

            return await collect(self.stream(request))
        url = self.url_for(call.path)
        limit = self.profile.limits.max_answer_bytes
        async with self._open(call) as response:
            with self.errors(url, started=True):
                raw = await read_bounded(response, limit, self.base_url, self._too_long)
        text = raw.decode("utf-8", "replace")
        try:
            body = parse_json(text)
        except ValueError as error:
            what = "JSON nested too deeply to read" if "deep" in str(error) else "not JSON"
            raise ProtocolError(
                f"{url} answered with {describe_body(text)}, {what}.", server=self.base_url
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


def sse_data(item: SSEEvent) -> str:
    return item.data
