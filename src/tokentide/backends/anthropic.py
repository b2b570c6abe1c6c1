"""Anthropic Messages API (``api = "anthropic"``), ``url = "https://api.anthropic.com"``.

``POST /v1/messages`` with ``x-api-key`` (not ``Authorization``) and
``anthropic-version`` (profile option ``anthropic_version``, default ``2023-06-01``).
The system prompt goes in the top-level ``system`` field, and ``max_tokens`` is required
by the API, so :data:`DEFAULT_MAX_TOKENS` is sent when the profile sets none.

Stream (``protocols.md`` §5): named events ``message_start`` → per block
``content_block_start`` / ``content_block_delta`` / ``content_block_stop`` →
``message_delta`` (stop reason, cumulative output tokens) → ``message_stop``, the
terminator.  ``text_delta`` is answer text, ``thinking_delta`` reasoning; a ``tool_use``
block (its ``input_json_delta`` fragments joined) becomes one ``ToolCallRequested`` at
its ``content_block_stop``; signatures and citations are ignored.  ``ping`` events come
anywhere.  Errors: HTTP ``{"type":"error","error":{type,message}}`` before the stream
(529 = overloaded), and ``event: error`` with the same body inside a 200 stream.

Tools (:attr:`AnthropicBackend.calls_tools`): ``tools: [{name, description,
input_schema}]`` with ``tool_choice: {"type": "auto" | "any" | "none" | "tool"}``; an
assistant turn that asked for calls is its text block (if any) and one ``tool_use {id,
name, input}`` block per call, and the results are ``tool_result {tool_use_id, content,
is_error}`` blocks, all of a turn's in one user message (the API requires it;
:mod:`~tokentide.backends.tool_calls`).  Stop reason ``tool_use`` is ``tool_calls``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tokentide.backends.base import (
    GenerationRequest,
    Reply,
    is_continuation,
    model_name,
    sampling,
)
from tokentide.backends.events import (
    Event,
    Finish,
    ReasoningDelta,
    TextDelta,
    ToolCallRequested,
    Usage,
)
from tokentide.backends.http import HTTPBackend, HTTPCall, StreamParser, event_object
from tokentide.backends.sse import SSEEvent
from tokentide.backends.tool_calls import (
    FragmentAssembler,
    anthropic_messages,
    anthropic_tools,
    arguments_text,
)
from tokentide.config.model import Profile
from tokentide.errors import ConfigError, IncompleteStream, ServerError, excerpt

__all__ = ["DEFAULT_MAX_TOKENS", "DEFAULT_VERSION", "AnthropicBackend", "from_profile"]

DEFAULT_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 1024
STOP_REASONS = {
    "end_turn": "stop",
    "max_tokens": "length",
    "stop_sequence": "stop_sequence",
    "tool_use": "tool_calls",
}


def stop_reason(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    return STOP_REASONS.get(value, value)


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _index(obj: dict[str, Any]) -> int | None:
    """A content block's index (None if the server sent none, or not a number)."""
    return _int_or_none(obj.get("index"))


class AnthropicParser(StreamParser):
    def __init__(self, server: str) -> None:
        self.server = server
        self.done = False
        self.reason: str | None = None
        self.model: str | None = None
        self.input_tokens: int | None = None
        self.output_tokens: int | None = None
        self.tools = FragmentAssembler()
        self.tool_inputs: dict[int | None, Any] = {}
        """The open ``tool_use`` blocks by index, with the ``input`` each started with."""

    def _usage(self) -> Usage | None:
        if self.input_tokens is None and self.output_tokens is None:
            return None
        return Usage(self.input_tokens, self.output_tokens)

    def _take_usage(self, usage: Any) -> None:
        if isinstance(usage, dict):
            if (n := _int_or_none(usage.get("input_tokens"))) is not None:
                self.input_tokens = n
            if (n := _int_or_none(usage.get("output_tokens"))) is not None:
                self.output_tokens = n

    def feed(self, item: SSEEvent) -> list[Event]:
        if item.event == "ping":
            return []
        obj = event_object(item.data, self.server)
        kind = item.event if item.event != "message" else obj.get("type")
        if kind == "error" or obj.get("type") == "error":
            error = obj.get("error")
            error = error if isinstance(error, dict) else {}
            etype = error.get("type")
            etype = etype if isinstance(etype, str) else None
            message = error.get("message") or "no message"
            raise ServerError(
                f"{self.server} reported an error during the answer"
                f"{f' ({etype})' if etype else ''}: {excerpt(str(message))}",
                kind=etype,
                server=self.server,
                hint="Anthropic is overloaded; try again in a moment."
                if etype == "overloaded_error"
                else None,
            )
        if kind == "content_block_delta":
            delta = obj.get("delta")
            if isinstance(delta, dict):
                dtype = delta.get("type")
                if dtype == "text_delta" and isinstance(text := delta.get("text"), str) and text:
                    return [TextDelta(text)]
                if (
                    dtype == "thinking_delta"
                    and isinstance(thinking := delta.get("thinking"), str)
                    and thinking
                ):
                    return [ReasoningDelta(thinking)]
                if dtype == "input_json_delta" and (index := _index(obj)) in self.tool_inputs:
                    self.tools.add(index, arguments=delta.get("partial_json"))
            return []
        if kind == "content_block_start":
            block = obj.get("content_block")
            if isinstance(block, dict) and block.get("type") == "tool_use":
                index = _index(obj)
                self.tools.add(index, id=block.get("id"), name=block.get("name"))
                self.tool_inputs[index] = block.get("input")
            return []
        if kind == "content_block_stop":
            index = _index(obj)
            return self._tool_call(index) if index in self.tool_inputs else []
        if kind == "message_start":
            message = obj.get("message")
            if isinstance(message, dict):
                self._take_usage(message.get("usage"))
                self.model = model_name(message.get("model"))
            return []
        if kind == "message_delta":
            delta = obj.get("delta")
            if isinstance(delta, dict) and delta.get("stop_reason") is not None:
                self.reason = stop_reason(delta.get("stop_reason"))
            self._take_usage(obj.get("usage"))
            return []
        if kind == "message_stop":
            self.done = True
            calls = [c for index in list(self.tool_inputs) for c in self._tool_call(index)]
            return [*calls, Finish(self.reason, self._usage(), model=self.model)]
        return []  # event types added later

    def _tool_call(self, index: int | None) -> list[Event]:
        """The finished ``tool_use`` block at ``index``: its streamed JSON, else the
        ``input`` the block started with (a call without arguments sends none)."""
        initial = self.tool_inputs.pop(index, None)
        calls: list[Event] = []
        for call in self.tools.pop(index):
            if not call.arguments:
                call = ToolCallRequested(call.name, arguments_text(initial or {}), call.id)
            calls.append(call)
        return calls

    def end(self) -> list[Event]:
        raise IncompleteStream(
            f"The stream from {self.server} ended without message_stop: the answer may be "
            "cut short.",
            server=self.server,
        )


class AnthropicBackend(HTTPBackend):
    api = "anthropic"
    calls_tools = True
    """:class:`~tokentide.backends.base.CallsTools`: ``tools`` / ``tool_use`` / ``tool_result``."""
    takes_images = True
    """:class:`~tokentide.backends.base.TakesImages`: ``image`` blocks, base64 source."""
    continues_answers = True
    """A final assistant turn is a prefill: Claude goes on from it (models that do not
    take a prefill refuse the request with a 400, which is shown)."""

    def __init__(self, profile: Profile, env: Mapping[str, str]) -> None:
        super().__init__(profile, env)
        version = profile.options.get("anthropic_version", DEFAULT_VERSION)
        if not isinstance(version, str) or not version:
            raise ConfigError(
                f"Profile {profile.name!r}: anthropic_version must be a date string "
                f"such as {DEFAULT_VERSION!r}."
            )
        self.version = version

    def auth_headers(self) -> dict[str, str]:
        return {"x-api-key": self._api_key} if self._api_key else {}

    def _body(self, request: GenerationRequest, stream: bool) -> dict[str, Any]:
        profile = self.profile
        body: dict[str, Any] = {}
        if model := self.model_or(request):
            body["model"] = model
        chosen = sampling(request, profile)
        body["max_tokens"] = chosen.get("max_tokens", DEFAULT_MAX_TOKENS)  # required by the API
        system = "\n\n".join(m.content for m in request.messages if m.role == "system")
        if system:
            body["system"] = system
        body["messages"] = anthropic_messages(request.messages)
        if is_continuation(request) and isinstance(body["messages"][-1]["content"], str):
            # "final assistant content cannot end with trailing whitespace": the API
            # refuses it, so it is left out (and not added back: the model's own
            # continuation starts with whatever space it wants).
            body["messages"][-1]["content"] = request.messages[-1].content.rstrip()
        for key in ("temperature", "top_p"):  # the Messages API has no seed
            if key in chosen:
                body[key] = chosen[key]
        if request.stop:
            body["stop_sequences"] = list(request.stop)
        body["stream"] = stream
        body.update(profile.params)
        body.update(request.extra)
        body.update(anthropic_tools(request.tools, request.tool_choice))  # what will be run
        return body

    def _headers(self, stream: bool) -> dict[str, str]:
        headers = {"anthropic-version": self.version}
        if stream:
            headers["Accept"] = "text/event-stream"
        return headers

    def stream_call(self, request: GenerationRequest) -> HTTPCall:
        return HTTPCall("/v1/messages", self._body(request, True), self._headers(True))

    def create_call(self, request: GenerationRequest) -> HTTPCall:
        return HTTPCall("/v1/messages", self._body(request, False), self._headers(False))

    def new_parser(self, request: GenerationRequest) -> StreamParser:
        return AnthropicParser(self.base_url)

    def parse_reply(self, body: Any, request: GenerationRequest) -> Reply:
        text: list[str] = []
        reasoning: list[str] = []
        calls: list[ToolCallRequested] = []
        for block in body["content"]:
            if block.get("type") == "text" and isinstance(block.get("text"), str):
                text.append(block["text"])
            elif block.get("type") == "thinking" and isinstance(block.get("thinking"), str):
                reasoning.append(block["thinking"])
            elif block.get("type") == "tool_use":
                name, call_id = block.get("name"), block.get("id")
                calls.append(
                    ToolCallRequested(
                        name if isinstance(name, str) and name else "(unnamed tool)",
                        arguments_text(block.get("input", {})),
                        call_id if isinstance(call_id, str) and call_id else None,
                    )
                )
        usage = body.get("usage")
        return Reply(
            text="".join(text),
            finish_reason=stop_reason(body.get("stop_reason")),
            usage=Usage(
                _int_or_none(usage.get("input_tokens")), _int_or_none(usage.get("output_tokens"))
            )
            if isinstance(usage, dict)
            else None,
            reasoning="".join(reasoning),
            tool_calls=tuple(calls),
            model=model_name(body.get("model")),
        )


def from_profile(profile: Profile, env: Mapping[str, str]) -> AnthropicBackend:
    return AnthropicBackend(profile, env)
