"""OpenAI-compatible chat completions (``api = "openai"``) and text completions
(``api = "openai-completions"``): OpenAI, vLLM, llama.cpp server, TGI ``/v1``, LM Studio,
Ollama ``/v1``.

``url`` is the base as people write it, e.g. ``http://127.0.0.1:8000/v1``; the backend
appends ``/chat/completions`` or ``/completions``.  Normalisation follows
``protocols.md`` §4.4: ``[DONE]`` is checked before JSON parsing, a truthy ``error`` in
any chunk raises, ``choices`` may be null, missing or empty (usage chunks), ``content``
may be missing, null or empty, ``reasoning_content``/``reasoning`` are reasoning, and a
stream that ends without ``[DONE]`` is complete only if a ``finish_reason`` was seen.

Continuing an answer (a request ending with the assistant's partial answer): the chat
route sends that final assistant message, plus ``continue_final_message: true`` and
``add_generation_prompt: false`` (vLLM, SGLang, TGI ``/v1``, llama.cpp server) unless
the profile's ``continue_answers`` option says ``"prefill"`` (the final message only:
servers that continue it by themselves and refuse unknown fields) or ``"off"`` (the
server would start a new answer: OpenAI itself, the default for ``api.openai.com``).
The completions route continues the flattened transcript (``base.prompt_text``).

Tool calls (the chat route: :attr:`OpenAIChatBackend.calls_tools`): a request's tools go
out as ``tools: [{"type": "function", "function": {name, description, parameters}}]``
with ``tool_choice`` (``"auto"``, ``"none"``, ``"required"`` or a named function); an
assistant turn that asked for calls as ``tool_calls: [{id, type, function: {name,
arguments}}]`` (``content`` ``""`` when it said nothing: llama-cpp-python refuses null)
and each result as ``{"role": "tool", "tool_call_id", "content"}``
(:mod:`~tokentide.backends.tool_calls`).  Streamed ``delta.tool_calls`` fragments are
joined by ``index`` (and the legacy ``function_call``, unless the same delta or message
has ``tool_calls``: llama-cpp-python sends each call both ways) and yielded as whole
``ToolCallRequested`` events just before the ``Finish``; a non-streaming
``message.tool_calls`` fills ``Reply.tool_calls``.  Either way an answer with calls ends
with reason ``tool_calls`` (vLLM says ``stop`` for forced calls).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from tokentide.backends.base import (
    GenerationRequest,
    Reply,
    is_continuation,
    model_name,
    prompt_text,
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
from tokentide.backends.media import backend_label, refuse_images
from tokentide.backends.sse import SSEEvent
from tokentide.backends.tool_calls import (
    FragmentAssembler,
    arguments_text,
    finish_reason,
    openai_messages,
    openai_tools,
)
from tokentide.config.model import Profile
from tokentide.errors import ConfigError, IncompleteStream, ProtocolError, ServerError, excerpt

__all__ = ["CONTINUE_MODES", "OpenAIChatBackend", "OpenAICompletionsBackend", "from_profile"]

CONTINUE_MODES = ("flag", "prefill", "off")
"""The ``continue_answers`` option: how the chat route asks to continue a final assistant
message (``flag``: with vLLM's ``continue_final_message``; ``prefill``: the message alone;
``off``: the server cannot)."""
_NO_PREFILL_HOSTS = frozenset({"api.openai.com"})
"""Servers known to answer a final assistant message with a new answer."""


def _usage(obj: Any) -> Usage | None:
    if not isinstance(obj, dict):
        return None
    return Usage(obj.get("prompt_tokens"), obj.get("completion_tokens"))


def _common_body(request: GenerationRequest, profile: Profile, model: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if model:
        body["model"] = model
    body.update(sampling(request, profile))
    if request.stop:
        body["stop"] = list(request.stop)
    body.update(profile.params)
    body.update(request.extra)
    return body


class _OpenAIParser(StreamParser):
    def __init__(self, server: str, chat: bool) -> None:
        self.server = server
        self.chat = chat
        self.finish_reason: str | None = None
        self.usage: Usage | None = None
        self.done = False
        self.tools = FragmentAssembler()
        self.model: str | None = None

    def _finish(self) -> list[Event]:
        calls = self.tools.flush()
        reason = finish_reason(self.finish_reason, bool(calls))
        return [*calls, Finish(reason, self.usage, model=self.model)]

    def feed(self, item: SSEEvent) -> list[Event]:
        data = item.data
        if data[:1] != "{" and data.strip().startswith("[DONE]"):
            self.done = True
            return self._finish()
        obj = event_object(data, self.server)
        if item.event == "error" or obj.get("error"):
            error = obj.get("error", obj)
            message = error.get("message") if isinstance(error, dict) else str(error)
            kind = error.get("type") if isinstance(error, dict) else None
            raise ServerError(
                f"{self.server} reported an error during the answer: "
                f"{excerpt(str(message or 'no message'))}",
                kind=None if kind is None else str(kind),
                server=self.server,
            )
        usage = obj.get("usage")
        if usage is not None:
            self.usage = _usage(usage) or self.usage
        if self.model is None:
            self.model = model_name(obj.get("model"))
        choices = obj.get("choices")
        if not choices:
            return []
        try:
            return self._choices(choices)
        except (AttributeError, TypeError) as error:
            raise ProtocolError(
                f"{self.server} sent a chunk of an unexpected shape: {excerpt(data, 200)!r}",
                server=self.server,
            ) from error

    def _choices(self, choices: list[Any]) -> list[Event]:
        events: list[Event] = []
        for choice in choices:
            if choice.get("index", 0) != 0:
                continue  # n > 1 is not shown; the first choice is the answer
            if self.chat:
                delta = choice.get("delta") or {}
                text = delta.get("content")
                if len(delta) > 1 or text is None:
                    reasoning = delta.get("reasoning_content") or delta.get("reasoning")
                    if isinstance(reasoning, str) and reasoning:
                        events.append(ReasoningDelta(reasoning))
                    self._tool_fragments(delta)
            else:
                text = choice.get("text")
            if text and type(text) is str:
                lp = choice.get("logprobs")
                if lp:
                    content = lp.get("content")
                    logprob = (
                        content[0].get("logprob")
                        if isinstance(content, list) and len(content) == 1
                        else None
                    )
                    events.append(TextDelta(text, logprob=logprob))
                else:
                    events.append(TextDelta(text))
            reason = choice.get("finish_reason")
            if reason:
                self.finish_reason = str(reason)
        return events

    def _tool_fragments(self, delta: dict[str, Any]) -> None:
        calls = delta.get("tool_calls")
        if isinstance(calls, list):
            for position, call in enumerate(calls):
                if not isinstance(call, dict):
                    continue
                index = call.get("index")
                function = call.get("function")
                function = function if isinstance(function, dict) else {}
                self.tools.add(
                    index if isinstance(index, int) else position,
                    id=call.get("id"),
                    name=function.get("name"),
                    arguments=function.get("arguments"),
                )
        legacy = delta.get("function_call")
        if isinstance(legacy, dict) and not calls:  # llama-cpp-python sends both
            self.tools.add(
                "function_call", name=legacy.get("name"), arguments=legacy.get("arguments")
            )

    def end(self) -> list[Event]:
        if self.finish_reason is not None:
            # Older TGI and llama.cpp /completion end without [DONE]: fine once a
            # finish_reason was seen (protocols.md §4.4 rule 7).
            return self._finish()
        raise IncompleteStream(
            f"The stream from {self.server} ended without [DONE] or a finish reason: "
            "the answer may be cut short.",
            server=self.server,
            hint="The server may have run out of context or crashed; check its log.",
        )


def _reply_tool_calls(message: dict[str, Any]) -> tuple[ToolCallRequested, ...]:
    """``message.tool_calls`` (and the legacy ``function_call``) of a whole reply."""
    calls = message.get("tool_calls")
    found = [c for c in calls if isinstance(c, dict)] if isinstance(calls, list) else []
    if isinstance(message.get("function_call"), dict) and not found:  # the same call, older
        found.append({"function": message["function_call"]})
    result = []
    for call in found:
        function = call.get("function")
        function = function if isinstance(function, dict) else {}
        name, call_id = function.get("name"), call.get("id")
        result.append(
            ToolCallRequested(
                name if isinstance(name, str) and name else "(unnamed tool)",
                arguments_text(function.get("arguments")),
                call_id if isinstance(call_id, str) and call_id else None,
            )
        )
    return tuple(result)


class _OpenAIBackend(HTTPBackend):
    """What the chat and completions routes share: the request and the stream."""

    path: ClassVar[str]
    chat: ClassVar[bool]

    def _body(self, request: GenerationRequest, stream: bool) -> dict[str, Any]:
        raise NotImplementedError

    def stream_call(self, request: GenerationRequest) -> HTTPCall:
        return HTTPCall(self.path, self._body(request, True), {"Accept": "text/event-stream"})

    def create_call(self, request: GenerationRequest) -> HTTPCall:
        return HTTPCall(self.path, self._body(request, False))

    def new_parser(self, request: GenerationRequest) -> StreamParser:
        return _OpenAIParser(self.base_url, chat=self.chat)


def continue_mode(profile: Profile, host: str | None) -> str:
    """The profile's ``continue_answers`` option, checked (default: ``flag``, or ``off``
    for a server known not to continue)."""
    value = profile.options.get("continue_answers")
    if value is None:
        return "off" if host in _NO_PREFILL_HOSTS else "flag"
    if value is False:
        return "off"
    if value not in CONTINUE_MODES:
        raise ConfigError(
            f"Profile {profile.name!r}: continue_answers must be one of "
            f"{', '.join(map(repr, CONTINUE_MODES))}, not {value!r}.",
            hint='"flag" for vLLM, SGLang, TGI and llama.cpp server; "prefill" for a server '
            'that continues a final assistant message by itself; "off" if it cannot.',
        )
    return str(value)


class OpenAIChatBackend(_OpenAIBackend):
    api = "openai"
    path = "/chat/completions"
    chat = True
    calls_tools = True
    """:class:`~tokentide.backends.base.CallsTools`: the dialect carries them; whether the
    model calls them is the server's (vLLM needs ``--enable-auto-tool-choice`` and a
    parser, llama.cpp server ``--jinja`` or a function-calling ``chat_format``)."""
    takes_images = True
    """:class:`~tokentide.backends.base.TakesImages`: ``image_url`` parts with ``data:``
    URLs; whether the model sees them is the server's (a vision model; llama.cpp server
    needs its ``--mmproj``)."""

    def __init__(self, profile: Profile, env: Mapping[str, str]) -> None:
        super().__init__(profile, env)
        origin = self._base.origin
        self.continue_mode = continue_mode(profile, origin[1] if origin else None)

    @property
    def continues_answers(self) -> bool:
        """:class:`~tokentide.backends.base.ContinuesAnswers`: unless the profile says
        ``continue_answers = "off"`` (or the server is OpenAI itself)."""
        return self.continue_mode != "off"

    def _body(self, request: GenerationRequest, stream: bool) -> dict[str, Any]:
        body = _common_body(request, self.profile, self.model_or(request))
        body["messages"] = openai_messages(request.messages)
        body.update(openai_tools(request.tools, request.tool_choice))  # over params' tools
        if self.continue_mode == "flag" and is_continuation(request):
            # vLLM's chat-template flags (also TGI, SGLang, llama.cpp server): the final
            # assistant message is left open and no new assistant turn is started.
            body["continue_final_message"] = True
            body["add_generation_prompt"] = False
        body["stream"] = stream
        if stream:
            body.setdefault("stream_options", {"include_usage": True})
        return body

    def parse_reply(self, body: Any, request: GenerationRequest) -> Reply:
        choice = body["choices"][0]
        message = choice.get("message") or {}
        reasoning = message.get("reasoning_content") or message.get("reasoning") or ""
        calls = _reply_tool_calls(message)
        return Reply(
            text=message.get("content") or "",
            finish_reason=finish_reason(choice.get("finish_reason"), bool(calls)),
            usage=_usage(body.get("usage")),
            reasoning=reasoning if isinstance(reasoning, str) else "",
            tool_calls=calls,
            model=model_name(body.get("model")),
        )


class OpenAICompletionsBackend(_OpenAIBackend):
    api = "openai-completions"
    path = "/completions"
    chat = False
    calls_tools = False
    """A prompt string has no place for tools."""
    takes_images = False
    """Nor for pictures (:class:`~tokentide.backends.base.TakesImages`)."""
    continues_answers = True
    """The transcript ends with the partial answer (``base.prompt_text``)."""

    def _body(self, request: GenerationRequest, stream: bool) -> dict[str, Any]:
        refuse_images(request, backend_label(self.profile, self.api), self.name)
        body = _common_body(request, self.profile, self.model_or(request))
        body["prompt"] = prompt_text(request)
        body["stream"] = stream
        return body

    def parse_reply(self, body: Any, request: GenerationRequest) -> Reply:
        choice = body["choices"][0]
        return Reply(
            text=choice.get("text") or "",
            finish_reason=choice.get("finish_reason"),
            usage=_usage(body.get("usage")),
            model=model_name(body.get("model")),
        )


def from_profile(profile: Profile, env: Mapping[str, str]) -> HTTPBackend:
    if profile.api == "openai-completions":
        return OpenAICompletionsBackend(profile, env)
    return OpenAIChatBackend(profile, env)
