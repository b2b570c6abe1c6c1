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

from tokentide.backends.base import Message
from tokentide.backends.events import ToolCallRequested

__all__ = [
    "AttachmentPart",
    "NodePart",
    "Part",
    "ReasoningPart",
    "TextPart",
    "TokensPart",
    "ToolCallPart",
    "ToolResultPart",
    "ToolRound",
    "content_of",
    "final_text",
    "from_stored",
    "node_section",
    "plain_messages",
    "round_pairs",
    "stored_fields",
    "tool_rounds",
    "wire_messages",
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
    """What a tool gave back for one call (``content``: untrusted text; ``is_error``:
    it failed, timed out, was denied or does not exist, and ``content`` says why)."""

    call_id: str | None
    content: str
    is_error: bool = False
    name: str = ""
    """The tool's name as the model called it."""
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
    after_tools = False
    for part in parts:
        if isinstance(part, TextPart):
            if after_tools and part.text and any(main):
                main.append("\n\n")  # the text after a tool round starts a paragraph
            main.append(part.text)
            after_tools = False
        elif isinstance(part, NodePart):
            nodes.append(node_section(part.node, part.text))
        elif isinstance(part, ToolCallPart | ToolResultPart):
            after_tools = True
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
    rounds = tool_rounds(parts)
    if rounds:
        details["tools"] = [
            {
                "text": text,
                "calls": [{"id": c.call_id, "name": c.name, "arguments": c.arguments} for c in calls],
                "results": [
                    {"call_id": r.call_id, "name": r.name, "content": r.content, "is_error": r.is_error}
                    for r in results
                ],
            }
            for text, calls, results in rounds
        ]  # fmt: skip
    return content_of(parts), reasoning, details or None


ToolRound: TypeAlias = tuple[str, list[ToolCallPart], list[ToolResultPart]]


def tool_rounds(parts: Sequence[Part]) -> list[ToolRound]:
    """The rounds of an answer that called tools: the text before each round's calls,
    the calls, and their results (the text after the last round is not a round)."""
    rounds: list[ToolRound] = []
    text: list[str] = []
    for part in parts:
        if isinstance(part, TextPart):
            text.append(part.text)
        elif isinstance(part, ToolCallPart):
            # A call opens a round unless it follows the calls of the round open now.
            if not rounds or text or rounds[-1][2]:
                rounds.append(("".join(text), [], []))
                text = []
            rounds[-1][1].append(part)
        elif isinstance(part, ToolResultPart) and rounds:
            rounds[-1][2].append(part)
    return rounds


def final_text(parts: Sequence[Part]) -> str:
    """The text after an answer's last tool call or result (all of it, without tools)."""
    text: list[str] = []
    for part in parts:
        if isinstance(part, TextPart):
            text.append(part.text)
        elif isinstance(part, ToolCallPart | ToolResultPart):
            text = []
    return "".join(text)


def round_pairs(
    calls: Sequence[ToolCallPart], results: Sequence[ToolResultPart]
) -> list[tuple[ToolCallPart, ToolResultPart | None]]:
    """Each call of one round with its result: by id where the server gave ids, else
    by position; None for a call that never got one."""
    by_id = {r.call_id: r for r in results if r.call_id is not None}
    pairs: list[tuple[ToolCallPart, ToolResultPart | None]] = []
    for index, call in enumerate(calls):
        result = by_id.get(call.call_id) if call.call_id is not None else None
        if result is None and call.call_id is None and index < len(results):
            result = results[index]
        pairs.append((call, result))
    return pairs


def plain_messages(messages: Sequence[Message]) -> tuple[Message, ...]:
    """``messages`` for a request that offers no tools (tools off, or a backend that
    cannot take them): earlier calls and results become text of the answers they were
    in, so no server sees a ``tool`` message or a call without its tools."""
    if not any(m.tool_calls or m.role == "tool" for m in messages):
        return tuple(messages)
    out: list[Message] = []
    merge = False
    for message in messages:
        if message.tool_calls or message.role == "tool":
            if message.role == "tool":
                what = "an error" if message.is_error else "this"
                text = f"[{message.name or 'the tool'} gave {what}: {message.content}]"
            else:
                calls = " ".join(f"[called {c.name}({c.arguments})]" for c in message.tool_calls)
                text = f"{message.content}\n\n{calls}" if message.content else calls
        elif message.role == "assistant" and merge:
            text = message.content
        else:
            out.append(message)
            merge = False
            continue
        if merge and out and out[-1].role == "assistant":
            out[-1] = Message(
                "assistant", f"{out[-1].content}\n\n{text}" if text else out[-1].content
            )
        else:
            out.append(Message("assistant", text))
        merge = True
    return tuple(out)


def wire_messages(parts: Sequence[Part]) -> list[Message]:
    """An answer as the next request carries it: one assistant message, or for an
    answer that called tools, per round the assistant's text with its calls and one
    ``tool`` message per call, then the text after the last round.  A call with no
    result (stopped while it ran) is sent with an error result saying so, because
    every dialect refuses a call left unanswered."""
    rounds = tool_rounds(parts)
    if not rounds:
        return [Message("assistant", content_of(parts))]
    messages: list[Message] = []
    for text, calls, results in rounds:
        asked = tuple(ToolCallRequested(c.name, c.arguments, c.call_id) for c in calls)
        messages.append(Message("assistant", text, tool_calls=asked))
        for call, result in round_pairs(calls, results):
            if result is None:
                result = ToolResultPart(call.call_id, "The call was stopped before it ended.", True)
            messages.append(
                Message(
                    "tool", result.content, tool_call_id=call.call_id, name=call.name,
                    is_error=result.is_error,
                )
            )  # fmt: skip
    if final := final_text(parts):
        messages.append(Message("assistant", final))
    return messages


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
    rounds = (details or {}).get("tools") or ()
    if rounds and not nodes:
        with_tools = _with_rounds(content, rounds)
        if with_tools is not None:
            return (*(p for p in parts if isinstance(p, ReasoningPart)), *with_tools,
                    *(p for p in parts if isinstance(p, TokensPart)))  # fmt: skip
    return tuple(parts)


def _with_rounds(content: str, rounds: Iterable[Mapping[str, Any]]) -> list[Part] | None:
    """The text and tool parts of a stored answer that called tools, or None when the
    stored rounds do not lead up to ``content`` (a file edited by hand)."""
    parts: list[Part] = []
    for stored in rounds:
        parts.append(TextPart(str(stored["text"])))
        parts.extend(
            ToolCallPart(str(c["name"]), str(c["arguments"]), c["id"]) for c in stored["calls"]
        )
        parts.extend(
            ToolResultPart(r["call_id"], str(r["content"]), bool(r["is_error"]), str(r["name"]))
            for r in stored["results"]
        )
    before = content_of(parts)
    if content == before:
        return parts
    if not before and content.startswith("\n\n"):  # saved before a round-text fix
        content = content[2:]
    if before and content.startswith(before + "\n\n"):
        return [*parts, TextPart(content[len(before) + 2 :])]
    if not before:
        return [*parts, TextPart(content)]
    return None
