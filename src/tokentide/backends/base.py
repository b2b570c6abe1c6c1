"""The contract between tokentide and a model backend.

Every backend offers two ways to consume one answer (the Function/Muna idea: how a
backend *produces* an answer is separate from how it is *consumed*):

* :meth:`Backend.stream` yields :mod:`events <tokentide.backends.events>` as they arrive;
* :meth:`Backend.create` waits for the whole answer.  Backends use the server's real
  non-streaming request where the protocol has one (OpenAI ``stream: false``, TGI
  ``/generate``, ...) and otherwise consume their own stream (:func:`collect`).

Cancellation: ``stream`` is an async generator.  Whoever iterates it closes it with
``contextlib.aclosing`` or cancels the task awaiting it; either unwinds through the
backend's ``async with``/``finally`` blocks, which close the HTTP response, cancel the
gRPC call or stop the local generator, so the server sees the disconnect.  Backends
never poll flags and never import the UI.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from tokentide.backends.events import (
    Event,
    Finish,
    ReasoningDelta,
    TextDelta,
    ToolCallRequested,
    Usage,
)
from tokentide.backends.media import ImageData, refuse_images
from tokentide.backends.tool_spec import ToolChoice, ToolSpec
from tokentide.config.model import Profile

__all__ = [
    "Backend",
    "CallsTools",
    "ContinuesAnswers",
    "GenerationRequest",
    "Message",
    "Reply",
    "ReportsHealth",
    "StreamsBatches",
    "TakesImages",
    "TokenEvents",
    "calls_tools",
    "can_continue",
    "collect",
    "is_continuation",
    "prompt_text",
    "sampling",
    "takes_images",
]

Role = Literal["system", "user", "assistant", "tool"]


@dataclass(frozen=True, slots=True)
class Message:
    """One turn of a conversation.

    An ``assistant`` turn in which the model asked for tools carries the calls in
    ``tool_calls`` (its ``content`` may be empty); each call's result follows as a
    ``tool`` message naming the call (``tool_call_id``) and the tool (``name``).
    """

    role: Role
    content: str
    tool_calls: tuple[ToolCallRequested, ...] = ()
    tool_call_id: str | None = None
    name: str | None = None
    is_error: bool = False
    """A ``tool`` message only: the result is an error (Anthropic's ``is_error``)."""
    images: tuple[ImageData, ...] = ()
    """A ``user`` message only: pictures sent with its text (see :mod:`.media`)."""


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    """Everything a backend needs to produce one answer."""

    messages: Sequence[Message]
    """The conversation so far, oldest first, ending with the user's prompt.  A system
    prompt, if any, is the first message.  A request that ends with an assistant message
    instead asks the model to *continue* that (partial) answer: the backend returns only
    the new text, which the caller appends to it (:func:`is_continuation`,
    :func:`can_continue`)."""
    model: str | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    seed: int | None = None
    top_p: float | None = None
    stop: Sequence[str] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)
    """Backend-specific request fields from the profile (``[profiles.x.params]``)."""
    tools: Sequence[ToolSpec] = ()
    """Tools offered to the model (none: the request says nothing of tools)."""
    tool_choice: ToolChoice = "auto"

    @classmethod
    def from_prompt(
        cls, prompt: str, *, system: str | None = None, **kwargs: Any
    ) -> GenerationRequest:
        messages = [Message("system", system)] if system else []
        messages.append(Message("user", prompt))
        return cls(messages=tuple(messages), **kwargs)


def request_for(
    profile: Profile,
    messages: Sequence[Message],
    overrides: Mapping[str, Any] | None = None,
) -> GenerationRequest:
    """The one way a request is built from a profile: ``messages`` (a system prompt, if
    any, first), the profile's model and sampling (``max_tokens``, ``temperature``,
    ``top_p``, ``seed``), each beaten by a value in ``overrides`` that is not None (a
    conversation's own settings, a command line flag).  ``tide ask``, the chat session
    and ``tide compare`` all build theirs here."""
    chosen = {key: value for key, value in (overrides or {}).items() if value is not None}
    unknown = set(chosen) - {"model", "max_tokens", "temperature", "top_p", "seed"}
    if unknown:
        raise ValueError(f"request_for: no such override {sorted(unknown)!r}")
    return GenerationRequest(
        messages=tuple(messages),
        model=chosen.get("model", profile.model),
        max_tokens=chosen.get("max_tokens", profile.max_tokens),
        temperature=chosen.get("temperature", profile.temperature),
        seed=chosen.get("seed", profile.seed),
        top_p=chosen.get("top_p", profile.top_p),
    )


def prompt_text(request: GenerationRequest) -> str:
    """The conversation flattened for completion-style endpoints (no chat template).

    A single user message is sent as it is; longer conversations are written as a plain
    transcript ending with ``Assistant:``.  A continuation (the last message is the
    assistant's partial answer) ends with ``Assistant: <partial>`` and no new
    ``Assistant:`` line, so the model goes on from the partial answer's last character;
    a single prompt and its partial answer are the two texts joined, which is exactly
    the text the partial answer was generated from.

    A plain-text prompt has no place for pictures: a request that carries any is
    refused (:func:`refuse_images`), never sent without them.
    """
    refuse_images(request, "A backend whose prompt is plain text")
    messages = list(request.messages)
    if len(messages) == 1 and messages[0].role == "user":
        return messages[0].content
    if [m.role for m in messages] == ["user", "assistant"]:
        return messages[0].content + messages[1].content
    lines = []
    for message in messages:
        if message.role == "system":
            lines.append(message.content)
        else:
            lines.append(f"{message.role.capitalize()}: {message.content}")
    if not is_continuation(request):
        lines.append("Assistant:")
    return "\n\n".join(lines)


def is_continuation(request: GenerationRequest) -> bool:
    """True when ``request`` asks to continue the assistant answer it ends with."""
    return bool(request.messages) and request.messages[-1].role == "assistant"


def sampling(request: GenerationRequest, profile: Profile) -> dict[str, Any]:
    """``max_tokens``, ``temperature``, ``top_p`` and ``seed`` for one request: the
    request's value, else the profile's; unset ones are left out.  Backends rename the
    keys their servers use (``max_new_tokens``, ``num_predict``, ...)."""
    values = {
        "max_tokens": request.max_tokens if request.max_tokens is not None else profile.max_tokens,
        "temperature": request.temperature
        if request.temperature is not None
        else profile.temperature,
        "top_p": request.top_p if request.top_p is not None else profile.top_p,
        "seed": request.seed if request.seed is not None else profile.seed,
    }
    return {key: value for key, value in values.items() if value is not None}


def model_name(value: object) -> str | None:
    """A server's ``model`` field as kept: a non-empty string, at most 200 characters."""
    return value[:200] if isinstance(value, str) and value.strip() else None


@dataclass(frozen=True, slots=True)
class Reply:
    """A whole answer, as :meth:`Backend.create` returns it."""

    text: str
    finish_reason: str | None = None
    usage: Usage | None = None
    reasoning: str = ""
    seed: int | None = None
    tokens: Sequence[TextDelta] = ()
    """Per-token details where the server sent them (TGI ``details``); else empty."""
    tool_calls: Sequence[ToolCallRequested] = ()
    """The tools the model asked to call (OpenAI ``message.tool_calls``, Anthropic
    ``tool_use`` blocks, Ollama ``message.tool_calls``), in the order it asked."""
    model: str | None = None
    """The model that answered, as the server named it (raw), where it said."""


@runtime_checkable
class Backend(Protocol):
    """A source of answers."""

    @property
    def name(self) -> str:
        """Shown to the user, e.g. ``"openai http://127.0.0.1:8000/v1 (gpt-4o-mini)"``."""
        ...

    def stream(self, request: GenerationRequest) -> AsyncGenerator[Event, None]:
        """Yield events for one answer, ending with :class:`Finish`; raise
        :class:`~tokentide.errors.BackendError` on failure."""
        ...

    async def create(self, request: GenerationRequest) -> Reply:
        """Return the whole answer; raise :class:`~tokentide.errors.BackendError`."""
        ...

    async def aclose(self) -> None:
        """Release long-lived resources (HTTP pools, channels, models).  Idempotent."""
        ...


@runtime_checkable
class TokenEvents(Protocol):
    """A backend that declares how its content events count.

    ``events_are_tokens`` true: every :class:`TextDelta` it streams is exactly one token
    of the model (the in-process llama.cpp model), so a stream's figures count tokens
    even when no usage is reported.  A backend that does not declare it is counted in
    chunks unless the server reports usage or each event carries a token id."""

    @property
    def events_are_tokens(self) -> bool: ...


@runtime_checkable
class ContinuesAnswers(Protocol):
    """A backend that declares whether it can continue an answer.

    ``continues_answers`` true: given a request whose last message is the assistant's
    partial answer (:func:`is_continuation`), the model goes on from that answer's last
    character and the backend returns only the new text.  False: it would start a new
    answer instead, so the caller must not send such a request (the chat says "this
    backend cannot continue an answer").  Read it with :func:`can_continue`."""

    @property
    def continues_answers(self) -> bool: ...


@runtime_checkable
class StreamsBatches(Protocol):
    """A backend that streams the events of each network read as one list (the
    generation then queues one item per read, not one per event): every HTTP backend.
    The others are drained event by event through :meth:`Backend.stream`."""

    def stream_batches(self, request: GenerationRequest) -> AsyncGenerator[list[Event], None]: ...


@runtime_checkable
class ReportsHealth(Protocol):
    """A backend whose server answers health questions of its own beyond "does it
    answer a prompt" (Triton's server live/ready, model ready, tensor names), for
    ``tide config check``.  ``probe()`` gives ``{"server", "model", "live", "ready",
    "model_ready", "problems": [...]}``; the backends that have no such thing do not
    declare it."""

    async def probe(self) -> dict[str, Any]: ...

    async def aclose(self) -> None: ...


@runtime_checkable
class CallsTools(Protocol):
    """A backend that declares whether its dialect carries tool calls.

    ``calls_tools`` true: it sends a request's :attr:`GenerationRequest.tools` and
    ``tool_choice``, the conversation's calls and results, and reports the calls the
    model asks for (OpenAI chat, and so vLLM, llama.cpp server, TGI ``/v1``; Anthropic;
    Ollama's ``/api/chat``).  Whether the *model* calls them is up to the server (vLLM
    needs a tool-call parser, llama.cpp server a ``chat_format`` or ``--jinja``).  False,
    or not declared: the request has no place for tools, so the caller must not offer
    them (the user is told instead).  Read it with :func:`calls_tools`."""

    @property
    def calls_tools(self) -> bool: ...


def calls_tools(backend: object) -> bool:
    """Whether ``backend`` can be offered tools (:class:`CallsTools`); False for a
    backend that does not say."""
    return isinstance(backend, CallsTools) and backend.calls_tools is True


@runtime_checkable
class TakesImages(Protocol):
    """A backend that declares whether its dialect carries pictures.

    ``takes_images`` true: a user message's :attr:`Message.images` go out in the
    dialect's own shape (OpenAI chat ``image_url`` parts with ``data:`` URLs, and so vLLM
    and llama.cpp server; Anthropic ``image`` blocks; Ollama's ``images``).  Whether the
    *model* can see them is up to the server (a text-only model refuses, or ignores
    them).  False, or not declared: the request has no place for pictures, so the caller
    refuses before sending (the user is told which profiles can); the dialect itself
    refuses too (:func:`refuse_images`).  Read it with :func:`takes_images`."""

    @property
    def takes_images(self) -> bool: ...


def takes_images(backend: object) -> bool:
    """Whether ``backend`` can be sent pictures (:class:`TakesImages`); False for a
    backend that does not say."""
    return isinstance(backend, TakesImages) and backend.takes_images is True


def can_continue(backend: object) -> bool:
    """Whether ``backend`` can continue a partial answer (:class:`ContinuesAnswers`);
    False for a backend that does not say."""
    return isinstance(backend, ContinuesAnswers) and backend.continues_answers is True


async def collect(events: AsyncGenerator[Event, None]) -> Reply:
    """Consume a stream into a :class:`Reply` (``create`` for stream-only protocols)."""
    text: list[str] = []
    reasoning: list[str] = []
    tokens: list[TextDelta] = []
    calls: list[ToolCallRequested] = []
    finish = Finish()
    detailed = False
    async with aclosing(events) as stream:
        async for event in stream:
            match event:
                case TextDelta():
                    if not event.special:
                        text.append(event.text)
                    tokens.append(event)
                    detailed = detailed or event.token_id is not None or event.logprob is not None
                case ReasoningDelta():
                    reasoning.append(event.text)
                case ToolCallRequested():
                    calls.append(event)
                case Finish():
                    finish = event
                case _:
                    pass
    return Reply(
        text="".join(text),
        finish_reason=finish.reason,
        usage=finish.usage,
        reasoning="".join(reasoning),
        seed=finish.seed,
        tokens=tuple(tokens) if detailed else (),
        tool_calls=tuple(calls),
        model=finish.model,
    )
