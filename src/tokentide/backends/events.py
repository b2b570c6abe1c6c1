"""What a backend yields while it answers one request.

Every event is a frozen dataclass, so consumers can ``match`` on them and mypy can tell
when a new kind of event is not handled.  Failures are not events: a backend raises a
:class:`~tokentide.backends.errors.BackendError`.

A stream is a sequence of :class:`TextDelta` (and, for servers that think aloud,
:class:`ReasoningDelta`) ended by exactly one :class:`Finish`; a model that asks for a
tool also yields one :class:`ToolCallRequested` per call, whole, before the ``Finish``
(whose reason is then ``tool_calls``).  :class:`Retrying` is emitted by the generation
object, never by a backend, while it waits to try again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

__all__ = [
    "Event",
    "Finish",
    "ReasoningDelta",
    "Retrying",
    "TextDelta",
    "ToolCallRequested",
    "Usage",
]


@dataclass(frozen=True, slots=True)
class TextDelta:
    """A fragment of the answer, in the order the model produced it."""

    text: str
    token_id: int | None = None
    """The token's id, where the server reports it (TGI ``details``)."""
    logprob: float | None = None
    """Natural-log probability of the token, where the server reports it."""
    special: bool = False
    """A special token (e.g. ``</s>``).  Its text is not part of the answer."""
    node_id: str | None = None
    """For multi-node streams (Substrate): which node produced this text."""


@dataclass(frozen=True, slots=True)
class ReasoningDelta:
    """A fragment of the model's reasoning ("thinking"), kept apart from the answer."""

    text: str


@dataclass(frozen=True, slots=True)
class ToolCallRequested:
    """The model asked to call a tool (OpenAI ``tool_calls``, Anthropic ``tool_use``,
    Ollama ``message.tool_calls``).  The backend only reports it; running it (after the
    user approves) and sending the result back is the session's work.

    Untrusted server text: sanitise ``name`` and ``arguments`` before showing them.
    """

    name: str
    arguments: str
    """The arguments as JSON text, as the model wrote them (streamed fragments joined;
    Ollama's and Anthropic's objects serialised); not validated."""
    id: str | None = None
    """The call's id, where the server gives one (``call_...``, ``toolu_...``)."""


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts as the server reported them."""

    prompt_tokens: int | None = None
    completion_tokens: int | None = None

    @property
    def total_tokens(self) -> int | None:
        if self.prompt_tokens is None or self.completion_tokens is None:
            return None
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True, slots=True)
class Finish:
    """The last event of a successful answer."""

    reason: str | None = None
    """Why generation stopped, normalised: ``stop``, ``length``, ``stop_sequence``,
    ``tool_calls``, ``content_filter``, or the server's own word; None if not said."""
    usage: Usage | None = None
    seed: int | None = None
    """The seed the server used, where it reports it (TGI)."""
    text: str | None = None
    """The whole answer as the server summarised it (TGI ``generated_text``), if sent."""
    model: str | None = None
    """The model that answered, as the server named it (OpenAI/Ollama ``model``,
    Anthropic ``message.model``), raw server text; None if not said."""


@dataclass(frozen=True, slots=True)
class Retrying:
    """The generation object is waiting ``delay`` seconds before attempt ``attempt``."""

    attempt: int
    delay: float
    reason: str


Event: TypeAlias = TextDelta | ReasoningDelta | ToolCallRequested | Finish | Retrying
