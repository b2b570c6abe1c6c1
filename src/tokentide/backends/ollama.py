"""Ollama's native chat API (``api = "ollama"``), ``url = "http://127.0.0.1:11434"``.

``POST /api/chat`` with the conversation as ``messages``; sampling settings go in
``options`` (``temperature``, ``num_predict``, ``seed``, ``top_p``, ``stop``) together
with the profile's ``params`` (Ollama model parameters such as ``num_ctx``), except the
request-level keys ``format``, ``think``, ``tools`` and ``keep_alive``, which go at the
top.  The profile option ``keep_alive`` (e.g. ``"5m"``, ``0``) sets how long the model
stays loaded.

The stream is NDJSON (``protocols.md`` §3), split on ``\\n`` only: each line's
``message.content`` is answer text and ``message.thinking`` reasoning; the line with
``"done": true`` ends the answer (``done_reason``; ``prompt_eval_count`` and
``eval_count`` are the token counts).  ``message.tool_calls`` come whole (arguments a JSON
object), each yielded as a ``ToolCallRequested``, and an answer with calls ends with
reason ``tool_calls`` (Ollama says ``stop``).  Errors: HTTP 4xx/5xx ``{"error"}`` before
the stream and an ``{"error"}`` line inside it.  ``create`` sends ``"stream": false``.

Tools (:attr:`OllamaBackend.calls_tools`): ``tools`` in OpenAI's shape at the top level
(Ollama has no ``tool_choice``: ``none`` sends no tools, and a call cannot be forced);
an assistant turn's calls as ``tool_calls: [{function: {name, arguments: <object>}}]``
and each result as ``{"role": "tool", "content", "tool_name"}``
(:mod:`~tokentide.backends.tool_calls`).
For Ollama's OpenAI-compatible endpoint use ``api = "openai"`` with ``/v1``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tokentide.backends.base import GenerationRequest, Reply, model_name, sampling
from tokentide.backends.events import (
    Event,
    Finish,
    ReasoningDelta,
    TextDelta,
    ToolCallRequested,
    Usage,
)
from tokentide.backends.http import HTTPBackend, HTTPCall, StreamParser, event_object
from tokentide.backends.tool_calls import (
    arguments_text,
    finish_reason,
    ollama_messages,
    ollama_tools,
)
from tokentide.config.model import Profile
from tokentide.errors import ConfigError, IncompleteStream, ServerError, excerpt

__all__ = ["OllamaBackend", "from_profile"]

TOP_LEVEL = frozenset({"format", "think", "tools", "keep_alive"})


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _usage(obj: Mapping[str, Any]) -> Usage | None:
    prompt = _int_or_none(obj.get("prompt_eval_count"))
    completion = _int_or_none(obj.get("eval_count"))
    if prompt is None and completion is None:
        return None
    return Usage(prompt, completion)


def _reason(obj: Mapping[str, Any]) -> str | None:
    reason = obj.get("done_reason")
    return reason if isinstance(reason, str) and reason else None


def _tool_calls(message: Mapping[str, Any]) -> list[ToolCallRequested]:
    calls = message.get("tool_calls")
    result = []
    for call in calls if isinstance(calls, list) else []:
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict):
            continue
        name, call_id = function.get("name"), call.get("id")
        result.append(
            ToolCallRequested(
                name if isinstance(name, str) and name else "(unnamed tool)",
                arguments_text(function.get("arguments")),
                call_id if isinstance(call_id, str) and call_id else None,
            )
        )
    return result


class OllamaParser(StreamParser):
    def __init__(self, server: str) -> None:
        self.server = server
        self.done = False
        self.asked = False
        """A line carried tool calls (the ``done`` line's reason is then ``tool_calls``)."""

    def feed(self, item: str) -> list[Event]:
        obj = event_object(item, self.server, "line")
        if error := obj.get("error"):
            message = error.get("message") if isinstance(error, dict) else error
            raise ServerError(
                f"{self.server} reported an error during the answer: {excerpt(str(message))}",
                server=self.server,
            )
        events: list[Event] = []
        message = obj.get("message")
        if isinstance(message, dict):
            thinking = message.get("thinking")
            if isinstance(thinking, str) and thinking:
                events.append(ReasoningDelta(thinking))
            content = message.get("content")
            if isinstance(content, str) and content:
                events.append(TextDelta(content))
            calls = _tool_calls(message)
            self.asked = self.asked or bool(calls)
            events.extend(calls)
        if obj.get("done") is True:
            self.done = True
            reason = finish_reason(_reason(obj), self.asked)
            events.append(Finish(reason, _usage(obj), model=model_name(obj.get("model"))))
        return events

    def end(self) -> list[Event]:
        raise IncompleteStream(
            f'The stream from {self.server} ended before its "done" line: the answer may '
            "be cut short.",
            server=self.server,
            hint="Ollama may have crashed or unloaded the model; check its log.",
        )


class OllamaBackend(HTTPBackend):
    api = "ollama"
    framing = "ndjson"
    calls_tools = True
    """:class:`~tokentide.backends.base.CallsTools`: ``tools`` and ``message.tool_calls``."""
    takes_images = True
    """:class:`~tokentide.backends.base.TakesImages`: a user message's ``images`` (base64);
    a model without vision refuses them with its own error."""
    continues_answers = True
    """A final assistant message is continued by Ollama itself (its library templates
    leave the last assistant turn open and add no new one); see docs/backends-http.md."""

    def __init__(self, profile: Profile, env: Mapping[str, str]) -> None:
        super().__init__(profile, env)
        keep_alive = profile.options.get("keep_alive")
        if keep_alive is not None and (
            isinstance(keep_alive, bool) or not isinstance(keep_alive, str | int | float)
        ):
            raise ConfigError(
                f'Profile {profile.name!r}: keep_alive must be a duration such as "5m" '
                "or a number of seconds."
            )
        self.keep_alive = keep_alive

    def _body(self, request: GenerationRequest, stream: bool) -> dict[str, Any]:
        profile = self.profile
        body: dict[str, Any] = {}
        if model := self.model_or(request):
            body["model"] = model
        body["messages"] = ollama_messages(request.messages)
        body["stream"] = stream
        options = sampling(request, profile)
        if "max_tokens" in options:
            options["num_predict"] = options.pop("max_tokens")
        if request.stop:
            options["stop"] = list(request.stop)
        if self.keep_alive is not None:
            body["keep_alive"] = self.keep_alive
        for extra in (profile.params, request.extra):
            for key, value in extra.items():
                if key in TOP_LEVEL:
                    body[key] = value
                else:
                    options[key] = value
        if options:
            body["options"] = options
        body.update(ollama_tools(request.tools, request.tool_choice))  # what will be run
        return body

    def stream_call(self, request: GenerationRequest) -> HTTPCall:
        return HTTPCall("/api/chat", self._body(request, True))

    def create_call(self, request: GenerationRequest) -> HTTPCall:
        return HTTPCall("/api/chat", self._body(request, False))

    def new_parser(self, request: GenerationRequest) -> StreamParser:
        return OllamaParser(self.base_url)

    def parse_reply(self, body: Any, request: GenerationRequest) -> Reply:
        message = body["message"]
        thinking = message.get("thinking")
        calls = tuple(_tool_calls(message))
        return Reply(
            text=message.get("content") or "",
            finish_reason=finish_reason(_reason(body), bool(calls)),
            usage=_usage(body),
            reasoning=thinking if isinstance(thinking, str) else "",
            tool_calls=calls,
            model=model_name(body.get("model")),
        )


def from_profile(profile: Profile, env: Mapping[str, str]) -> OllamaBackend:
    return OllamaBackend(profile, env)
