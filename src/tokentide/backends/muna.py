"""Muna remote predictions (``api = "muna"``), ``url = "https://api.muna.ai/v1"``.

``POST {url}/predictions/remote`` with ``Accept: text/event-stream``, a Bearer key and::

    {"tag": "<predictor tag>",
     "inputs": {"<input_name>": {"data": "data:text/plain;base64,<prompt>", "type": "string"}},
     "acceleration": "remote_auto", "stream": true}

Options: ``tag`` (required; ``model`` is used when it is absent), ``input_name``
(default ``prompt``), ``acceleration`` (default ``remote_auto``), ``yields`` (default
``cumulative``: a generator predictor's partial results are the whole answer so far;
``delta`` for predictors that yield pieces, ``auto`` to detect).  ``params`` are sent as
top-level request fields.

Each ``event: prediction`` holds a RemotePrediction ``{id, tag, results, latency, error,
logs, created}`` (``protocols.md`` §7).  ``results[0]`` is a RemoteValue whose ``data``
is a ``data:`` URL (base64 or percent-encoded) or an ``http(s)`` URL, which is fetched:
with the key only when it is on the profile url's own origin (scheme, host and port),
otherwise without any credentials, and never over plain http when the url is https
(``docs/backends-http.md``, "Transport security").  A truthy ``error`` field is an
error (ServerError); there is no sentinel, a clean end of the body ends the answer.  A non-2xx answer carries
``{"errors": [{"message"}]}``.  ``create`` is the same POST without ``stream`` and
returns one RemotePrediction.
"""

from __future__ import annotations

import base64
import binascii
import urllib.parse
from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any, cast

from tokentide.backends._cumulative import yields_option
from tokentide.backends.base import GenerationRequest, Reply, prompt_text
from tokentide.backends.events import Event, Finish, TextDelta
from tokentide.backends.http import HTTPBackend, HTTPCall, StreamParser, event_object
from tokentide.backends.http_body import read_bounded
from tokentide.backends.media import backend_label, refuse_images
from tokentide.backends.sse import SSEEvent
from tokentide.backends.stream_guard import StreamGuard
from tokentide.config.model import Profile
from tokentide.errors import ConfigError, LimitExceeded, ProtocolError, ServerError, excerpt

__all__ = ["MunaBackend", "decode_data_url", "encode_data_url", "from_profile"]


def encode_data_url(text: str) -> str:
    return "data:text/plain;base64," + base64.b64encode(text.encode()).decode("ascii")


def decode_data_url(url: str, server: str | None = None) -> str:
    """The UTF-8 text of a ``data:`` URL (RFC 2397: base64 or percent-encoded)."""
    head, comma, payload = url.partition(",")
    if not comma:
        raise ProtocolError(
            f"{server or 'The server'} sent a malformed data URL: {excerpt(url, 80)!r}",
            server=server,
        )
    if head.lower().endswith(";base64"):
        try:
            raw = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            raise ProtocolError(
                f"{server or 'The server'} sent a data URL with invalid base64: "
                f"{excerpt(url, 80)!r}",
                server=server,
            ) from None
    else:
        raw = urllib.parse.unquote_to_bytes(payload)
    return raw.decode("utf-8", "replace")


@dataclass(frozen=True, slots=True)
class _Fetch:
    """Not an event: the parser met a result stored at a URL.  The backend fetches it and
    hands the text back to ``parser.value``; it never leaves the backend."""

    url: str
    parser: MunaParser


class MunaParser(StreamParser):
    """``guard``: the stream's :class:`StreamGuard`, which turns the pieces of the
    profile's ``yields`` style into deltas and bounds them, fetched results included."""

    guard: StreamGuard

    def __init__(self, server: str, guard: StreamGuard) -> None:
        self.server = server
        self.guard = guard
        self.done = False

    def value(self, piece: str) -> list[Event]:
        delta = self.guard.text(piece)
        return [TextDelta(delta)] if delta else []

    def feed(self, item: SSEEvent) -> list[Event]:
        if item.event not in ("prediction", "message"):
            return []
        obj = event_object(item.data, self.server)
        raise_prediction_error(obj, self.server)
        value = first_result(obj, self.server)
        if value is None:
            return []
        if value.startswith("data:"):
            return self.value(decode_data_url(value, self.server))
        if _is_http_url(value):
            return [cast(Event, _Fetch(value, self))]
        return self.value(value)

    def end(self) -> list[Event]:
        return [Finish()]  # no sentinel: a clean end of the body is the end


def raise_prediction_error(obj: Mapping[str, Any], server: str) -> None:
    error = obj.get("error")
    if not error:
        return
    message = error.get("message") if isinstance(error, dict) else error
    raise ServerError(
        f"{server}: the prediction failed: {excerpt(str(message or error))}", server=server
    )


def first_result(obj: Mapping[str, Any], server: str) -> str | None:
    """``results[0].data`` of a RemotePrediction: a data URL, an http(s) URL, plain text,
    or None when there is no result (yet)."""
    results = obj.get("results")
    if not isinstance(results, list) or not results:
        return None
    value = results[0]
    if isinstance(value, dict):
        value = value.get("data")
    if value is None:
        return None
    if not isinstance(value, str):
        raise ProtocolError(
            f"{server} sent a prediction result that is not text: {excerpt(repr(value), 120)}",
            server=server,
            hint="tokentide shows predictors that return a string.",
        )
    return value


class MunaBackend(HTTPBackend):
    api = "muna"
    continues_answers = False
    """What a predictor does with its prompt is its own: tokentide cannot know that it
    would go on from a partial answer rather than answer the transcript anew."""

    def __init__(self, profile: Profile, env: Mapping[str, str]) -> None:
        super().__init__(profile, env)
        options = profile.options
        tag = options.get("tag", profile.model)
        if not isinstance(tag, str) or not tag:
            raise ConfigError(
                f"Profile {profile.name!r} (api 'muna') has no predictor tag.",
                hint='Add tag = "@owner/predictor" to the profile.',
            )
        self.tag = tag
        self.input_name = str(options.get("input_name", "prompt"))
        self.acceleration = str(options.get("acceleration", "remote_auto"))
        self.yields = yields_option(options, profile.name, "cumulative")

    def _body(self, request: GenerationRequest, stream: bool) -> dict[str, Any]:
        refuse_images(request, backend_label(self.profile, self.api), self.name)
        body: dict[str, Any] = {
            "tag": self.tag,
            "inputs": {
                self.input_name: {"data": encode_data_url(prompt_text(request)), "type": "string"}
            },
            "acceleration": self.acceleration,
        }
        if stream:
            body["stream"] = True
        body.update(self.profile.params)
        body.update(request.extra)
        return body

    def stream_call(self, request: GenerationRequest) -> HTTPCall:
        return HTTPCall(
            "/predictions/remote", self._body(request, True), {"Accept": "text/event-stream"}
        )

    def create_call(self, request: GenerationRequest) -> HTTPCall:
        return HTTPCall("/predictions/remote", self._body(request, False))

    def new_parser(self, request: GenerationRequest) -> StreamParser:
        return MunaParser(self.base_url, self.stream_guard())

    async def fetch(self, url: str) -> str:
        """A result stored at ``url``: with the key on the profile url's origin, without
        any credentials elsewhere (see :meth:`HTTPBackend.client_for`), bounded by
        ``max_answer_bytes`` before it is inflated."""
        client = self.client_for(url)
        limit = self.profile.limits.max_answer_bytes

        def too_long() -> LimitExceeded:
            return self._too_long(f"The result at {excerpt(url, 200)}")

        with self.errors(url):
            async with self.send(client, client.build_request("GET", url)) as response:
                raw = await read_bounded(response, limit, self.base_url, too_long)
        return raw.decode("utf-8", "replace")

    async def stream_batches(self, request: GenerationRequest) -> AsyncGenerator[list[Event], None]:
        """The transport's batches, with results stored at a URL fetched in order."""
        async with aclosing(super().stream_batches(request)) as batches:
            async for batch in batches:
                resolved: list[Event] = []
                for event in batch:
                    found: object = event  # the parser's private _Fetch travels as an Event
                    if isinstance(found, _Fetch):
                        resolved += found.parser.value(await self.fetch(found.url))
                        if found.parser.guard.exhausted:  # cut to fit: shown, then raised
                            if resolved:
                                yield resolved
                            raise found.parser.guard.too_long()
                    else:
                        resolved.append(event)
                if resolved:
                    yield resolved

    def parse_reply(self, body: Any, request: GenerationRequest) -> Reply:
        raise_prediction_error(body, self.base_url)
        value = first_result(body, self.base_url)
        if value is None:
            return Reply(text="")
        if value.startswith("data:"):
            return Reply(text=decode_data_url(value, self.base_url))
        if _is_http_url(value):
            return _URLReply(text="", url=value)
        return Reply(text=value)

    async def create(self, request: GenerationRequest) -> Reply:
        reply = await super().create(request)
        if isinstance(reply, _URLReply):
            return Reply(text=await self.fetch(reply.url))
        return reply


def _is_http_url(value: str) -> bool:
    return value[:8].lower().startswith(("http://", "https://"))


@dataclass(frozen=True, slots=True)
class _URLReply(Reply):
    url: str = ""


def from_profile(profile: Profile, env: Mapping[str, str]) -> MunaBackend:
    return MunaBackend(profile, env)
