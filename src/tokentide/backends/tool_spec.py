"""Tools as the protocol carries them: what a request offers the model
(:class:`ToolSpec`), and what a tool gave back for one call (:class:`ToolResult`).

These are the seam between where tools come from (:mod:`tokentide.tools`: MCP servers,
Python functions) and how each dialect writes them on the wire (OpenAI ``tools`` and
``role: "tool"`` messages, Anthropic ``tools`` / ``tool_use`` / ``tool_result`` blocks,
Ollama ``tools`` and ``message.tool_calls``).  A call the model asks for is a
:class:`~tokentide.backends.events.ToolCallRequested` event; an assistant turn that asked
for calls carries them in :attr:`~tokentide.backends.base.Message.tool_calls`, and each
result goes back as a ``"tool"`` :class:`~tokentide.backends.base.Message`.

A leaf module: it imports nothing of tokentide but the events.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["ForcedTool", "ToolChoice", "ToolResult", "ToolSpec"]


@dataclass(frozen=True, slots=True)
class ForcedTool:
    """A tool choice naming the one tool the model must call (OpenAI
    ``{"type": "function", "function": {"name"}}``, Anthropic ``{"type": "tool", "name"}``).

    Some servers force a call only this way: llama-cpp-python's
    ``chatml-function-calling`` handler takes a named tool but not ``"required"``.
    """

    name: str


ToolChoice = Literal["auto", "none", "required"] | ForcedTool
"""Whether the model may (``auto``), must not (``none``) or must (``required``, or the
one :class:`ForcedTool`) call a tool.  Each dialect's request says how it is written;
Ollama has no choice at all (``none`` leaves the tools out, the others send them as
offered)."""


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """One tool offered to the model.

    ``name`` is unique within a request (the toolbox qualifies clashing names); the
    model's call names it exactly.
    """

    name: str
    description: str = ""
    parameters: Mapping[str, Any] = field(
        default_factory=lambda: {"type": "object", "properties": {}}
    )
    """A JSON Schema object describing the arguments (``{"type": "object", ...}``)."""


@dataclass(frozen=True, slots=True)
class ToolResult:
    """What running one call gave back, as the model will read it.

    Untrusted text (a tool's output): sanitise ``content`` before showing it.
    """

    call_id: str | None
    """The id of the :class:`~tokentide.backends.events.ToolCallRequested` it answers."""
    name: str
    """The tool's name, as the model called it (Ollama and Gemini-style servers match
    results by name)."""
    content: str
    is_error: bool = False
    """The tool raised, timed out, was denied or does not exist; ``content`` says why,
    for the model and for the user."""
