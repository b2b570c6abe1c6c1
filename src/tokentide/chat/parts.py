"""What a message holds, as typed parts: the answer's text, the model's reasoning, the
per-token details, the blocks of a multi-node answer, and (for what comes next) tool
calls, tool results and attachments.

A later feature adds a part, not a special case: the chat session builds a message's
parts from the generation's events (:mod:`.answer`), the view shows each kind, and
:func:`stored_fields` / :func:`from_stored` translate parts to the history store's
columns (``content``, ``reasoning``, ``details``) and back.  Every text is untrusted
(sanitise before showing it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypeAlias

__all__ = [
    "AttachmentPart",
    "NodePart",
    "Part",
    "ReasoningPart",
    "TextPart",
    "TokensPart",
    "ToolCallPart",
    "ToolResultPart",
    "content_of",
    "from_stored",
    "node_section",
    "stored_fields",
]


@dataclass(frozen=True, slots=True)
class TextPart:
    """Text of the message outside any node (a prompt, or the answer)."""

    text: str
    kind: ClassVar[str] = "text"


@dataclass(frozen=True, slots=True)
class ReasoningPart:
    """The model's reasoning ("thinking"), exactly as received; never sent back."""

    text: str
    kind: ClassVar[str] = "reasoning"


@dataclass(frozen=True, slots=True)
class TokensPart:
    """The answer's tokens with their logprobs (natural log; None where not sent)."""

    tokens: tuple[tuple[str, float | None], ...]
    kind: ClassVar[str] = "tokens"


@dataclass(frozen=True, slots=True)
class NodePart:
    """One node's output in a multi-node (Substrate-style) answer."""

    node: str
    text: str
    kind: ClassVar[str] = "nodes"


@dataclass(frozen=True, slots=True)
class ToolCallPart:
    """A tool the model asked to call (``arguments`` as the model wrote them: JSON)."""

    name: str
    arguments: str
    call_id: str | None = None
    kind: ClassVar[str] = "tool_call"


@dataclass(frozen=True, slots=True)
class ToolResultPart:
    """What a tool gave back for one call."""

    call_id: str | None
    content: str
    is_error: bool = False
    kind: ClassVar[str] = "tool_result"


@dataclass(frozen=True, slots=True)
class AttachmentPart:
    """A file sent with a prompt, stored once by its digest."""

    name: str
    media_type: str
    size: int
    digest: str
    kind: ClassVar[str] = "attachment"


Part: TypeAlias = (
    TextPart
    | ReasoningPart
    | TokensPart
    | NodePart
    | ToolCallPart
    | ToolResultPart
    | AttachmentPart
)


def node_section(node: str, text: str) -> str:
    """One node's part of a multi-node answer's content (its text under its name)."""
    return f"**{node}**\n\n{text}"


def content_of(parts: Iterable[Part]) -> str:
    """The message as the next request carries it: its text, then each node's text
    under its name in bold (a multi-node answer)."""
    main: list[str] = []
    nodes: list[str] = []
    for part in parts:
        if isinstance(part, TextPart):
            main.append(part.text)
        elif isinstance(part, NodePart):
            nodes.append(node_section(part.node, part.text))
    text = "".join(main)
    if not nodes:
        return text
    return "\n\n".join([text, *nodes] if text else nodes)


def stored_fields(parts: Sequence[Part]) -> tuple[str, str | None, dict[str, Any] | None]:
    """``(content, reasoning, details)`` as the history store keeps them (see
    :func:`tokentide.history.columns.answer_details` for ``details``)."""
    reasoning = "".join(p.text for p in parts if isinstance(p, ReasoningPart)) or None
    details: dict[str, Any] = {}
    for part in parts:
        if isinstance(part, TokensPart) and any(lp is not None for _, lp in part.tokens):
            details["tokens"] = [[text, logprob] for text, logprob in part.tokens]
    nodes = [[p.node, p.text] for p in parts if isinstance(p, NodePart)]
    if nodes:
        details["nodes"] = nodes
    return content_of(parts), reasoning, details or None


def from_stored(
    content: str, reasoning: str | None = None, details: Mapping[str, Any] | None = None
) -> tuple[Part, ...]:
    """A stored message's parts.  If the stored nodes do not match ``content`` (a file
    edited by hand), the answer is one text part, without node parts."""
    parts: list[Part] = []
    if reasoning:
        parts.append(ReasoningPart(reasoning))
    nodes = [(str(node), str(text)) for node, text in (details or {}).get("nodes", ())]
    text = content
    if len({node for node, _ in nodes}) < len(nodes):
        nodes = []
    if nodes:
        blocks = "\n\n".join(node_section(node, node_text) for node, node_text in nodes)
        if content == blocks:
            text = ""
        elif content.endswith("\n\n" + blocks):
            text = content[: -len(blocks) - 2]
        else:
            nodes = []
    if text or not nodes:
        parts.append(TextPart(text))
    parts.extend(NodePart(node, node_text) for node, node_text in nodes)
    tokens = tuple(
        (str(t), None if lp is None else float(lp)) for t, lp in (details or {}).get("tokens", ())
    )
    if tokens:
        parts.append(TokensPart(tokens))
    return tuple(parts)
