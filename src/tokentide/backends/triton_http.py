"""Triton Inference Server's HTTP generate extension (``api = "triton-http"``).

``url = "http://host:8000"``; ``model`` is required.  Streaming is
``POST /v2/models/{model}[/versions/{model_version}]/generate_stream``, ``create`` is
``.../generate``.  The body is ``{"<input_tensor>": prompt, "parameters": {...}}``
(sampling settings under ``parameters``) plus the profile's ``params`` as top-level keys:
Triton maps top-level keys to the model's input tensors (``real-servers.md`` §2), so
``params = { max_tokens = 64 }`` feeds a ``max_tokens`` input.

Options: ``input_tensor`` (default ``text_input``), ``output_tensor`` (default
``text_output``), ``model_version``, ``yields`` (``delta``, the default, or
``cumulative``/``auto`` for models that send the whole text so far each time).

Wire facts (``protocols.md`` §8.1, ``real-servers.md`` §2): each response is a
``data:`` JSON ``{"model_name", "model_version", "<output_tensor>": ...}``; there is no
terminator, a clean end of the body is the end of the answer.  Errors: ``{"error"}``
JSON with a 4xx before inference, a ``data: {"error"}`` event after it, and for an
exception inside the model real Triton answers **400 with an event-stream body** holding
one error event.  ``/generate`` on a decoupled model answers HTTP 200 with an
``{"error": "generate expects model to produce exactly 1 response..."}`` body; ``create``
then falls back to consuming the stream.

Finish reason: the generate extension has none of its own, so an answer ends with
``Finish(None)``, unless a response carries a ``finish_reason`` output (vLLM's Triton
backend sends one when the request has ``return_finish_reason``: add it to ``params``);
its word is kept (``length`` at the token limit, ``stop``, ``abort``).
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from typing import Any

from tokentide.backends._cumulative import yields_option
from tokentide.backends.base import GenerationRequest, Reply, collect, prompt_text, sampling
from tokentide.backends.events import Event, Finish, TextDelta
from tokentide.backends.http import HTTPBackend, HTTPCall, StreamParser, event_object
from tokentide.backends.media import backend_label, refuse_images
from tokentide.backends.sse import SSEEvent
from tokentide.backends.stream_guard import StreamGuard
from tokentide.config.model import Profile
from tokentide.errors import ConfigError, ProtocolError, ServerError, excerpt

__all__ = ["TritonHTTPBackend", "from_profile"]


def finish_reason(obj: Mapping[str, Any]) -> str | None:
    """A ``finish_reason`` output (a string, or a one-element list of one) if sent."""
    value = obj.get("finish_reason")
    while isinstance(value, list) and len(value) == 1:
        value = value[0]
    return value if isinstance(value, str) and value else None


def output_text(obj: Mapping[str, Any], tensor: str, server: str) -> str | None:
    """The text of output ``tensor`` in one response (a BYTES tensor of shape [1] may come
    as a string or a one-element list); None when the response has no such output."""
    if tensor not in obj:
        return None
    value = obj[tensor]
    while isinstance(value, list) and len(value) == 1:
        value = value[0]
    if isinstance(value, str):
        return value
    if value is None or value == []:
        return ""
    raise ProtocolError(
        f"{server} sent a {tensor!r} output that is not text: {excerpt(repr(value), 120)}",
        server=server,
        hint="Set output_tensor in the profile to the model's text output.",
    )


class TritonHTTPParser(StreamParser):
    """``guard``: the stream's :class:`StreamGuard`, which turns the pieces of the
    profile's ``yields`` style into deltas (and the transport uses for the stream)."""

    guard: StreamGuard

    def __init__(self, server: str, output_tensor: str, guard: StreamGuard) -> None:
        self.server = server
        self.output_tensor = output_tensor
        self.guard = guard
        self.done = False
        self.reason: str | None = None

    def feed(self, item: SSEEvent) -> list[Event]:
        obj = event_object(item.data, self.server)
        if error := obj.get("error"):
            raise ServerError(
                f"{self.server} reported an error: {excerpt(str(error))}", server=self.server
            )
        piece = output_text(obj, self.output_tensor, self.server)
        if piece is None:
            keys = ", ".join(sorted(k for k in obj if k not in ("model_name", "model_version")))
            raise ProtocolError(
                f"{self.server} sent a response without the output {self.output_tensor!r} "
                f"(it has: {keys or 'nothing'}).",
                server=self.server,
                hint="Set output_tensor in the profile to the model's text output.",
            )
        self.reason = finish_reason(obj) or self.reason
        delta = self.guard.text(piece)
        return [TextDelta(delta)] if delta else []

    def end(self) -> list[Event]:
        # No terminator in this protocol: a clean end of the body is the end.
        return [Finish(self.reason)]


class TritonHTTPBackend(HTTPBackend):
    api = "triton-http"
    continues_answers = True
    """``text_input`` is raw text: the transcript ends with the partial answer
    (:func:`~tokentide.backends.base.prompt_text`)."""

    def __init__(self, profile: Profile, env: Mapping[str, str]) -> None:
        super().__init__(profile, env)
        options = profile.options
        for key in ("input_tensor", "output_tensor", "model_version"):
            value = options.get(key)
            if value is not None and (not isinstance(value, str | int) or value == ""):
                raise ConfigError(f"Profile {profile.name!r}: {key} must be a name.")
        self.input_tensor = str(options.get("input_tensor", "text_input"))
        self.output_tensor = str(options.get("output_tensor", "text_output"))
        version = options.get("model_version")
        self.model_version = None if version is None else str(version)
        self.yields = yields_option(options, profile.name)
        if not profile.model:
            raise ConfigError(
                f"Profile {profile.name!r} (api 'triton-http') has no model.",
                hint='Add model = "<name as Triton serves it>" (or pass --model).',
            )

    def _path(self, request: GenerationRequest, route: str) -> str:
        model = urllib.parse.quote(self.model_or(request) or "", safe="")
        path = f"/v2/models/{model}"
        if self.model_version is not None:
            path += f"/versions/{urllib.parse.quote(self.model_version, safe='')}"
        return f"{path}/{route}"

    def _body(self, request: GenerationRequest, stream: bool) -> dict[str, Any]:
        refuse_images(request, backend_label(self.profile, self.api), self.name)
        profile = self.profile
        parameters: dict[str, Any] = {"stream": stream, **sampling(request, profile)}
        if request.stop:
            parameters["stop"] = list(request.stop)
        top_level = {**profile.params, **request.extra}
        # Triton refuses a name that is both an input tensor (a top-level key) and a
        # parameter ("input 'max_tokens' already exists in request"): the tensor wins.
        for key in top_level:
            parameters.pop(key, None)
        body: dict[str, Any] = {self.input_tensor: prompt_text(request), "parameters": parameters}
        body.update(top_level)
        return body

    def stream_call(self, request: GenerationRequest) -> HTTPCall:
        return HTTPCall(
            self._path(request, "generate_stream"),
            self._body(request, True),
            {"Accept": "text/event-stream"},
        )

    def create_call(self, request: GenerationRequest) -> HTTPCall:
        return HTTPCall(self._path(request, "generate"), self._body(request, False))

    def new_parser(self, request: GenerationRequest) -> StreamParser:
        return TritonHTTPParser(self.base_url, self.output_tensor, self.stream_guard())

    def parse_reply(self, body: Any, request: GenerationRequest) -> Reply:
        text = output_text(body, self.output_tensor, self.base_url)
        if text is None:
            raise KeyError(self.output_tensor)
        return Reply(text=text, finish_reason=finish_reason(body))

    async def create(self, request: GenerationRequest) -> Reply:
        try:
            return await super().create(request)
        except ServerError as error:
            if "exactly 1 response" not in error.message:
                raise
        # A decoupled (streaming) model cannot answer /generate: consume its stream.
        return await collect(self.stream(request))


def from_profile(profile: Profile, env: Mapping[str, str]) -> TritonHTTPBackend:
    return TritonHTTPBackend(profile, env)
