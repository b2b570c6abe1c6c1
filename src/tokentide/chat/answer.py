"""An answer's parts, built from the generation's events as they arrive.

:class:`AnswerBuilder` is fed each batch the chat session drains (one call per batch,
never per token) and gives back the answer's :mod:`parts <tokentide.chat.parts>`: the
text outside any node, each node's text in the order the nodes first spoke, the tokens
with their logprobs once any token has one, the reasoning and the tool calls.  What is
saved and what the next request carries come from here, never from a widget.
"""

from __future__ import annotations

from collections.abc import Iterable

from tokentide.backends.events import (
    Event,
    Finish,
    ReasoningDelta,
    Retrying,
    TextDelta,
    ToolCallRequested,
)
from tokentide.backends.tool_spec import ToolResult
from tokentide.chat.parts import (
    NodePart,
    Part,
    ReasoningPart,
    TextPart,
    TokensPart,
    ToolCallPart,
    ToolResultPart,
    ToolRound,
    final_text,
    tool_rounds,
)

__all__ = ["AnswerBuilder"]


def _joined(pieces: list[str]) -> str:
    if len(pieces) > 1:
        pieces[:] = ["".join(pieces)]
    return pieces[0] if pieces else ""


class AnswerBuilder:
    """The parts of one answer so far.  ``prefix``: the text of an answer being
    continued (the new text is appended to it)."""

    def __init__(self, prefix: Iterable[Part] = ()) -> None:
        self._text: list[str] = []
        self._nodes: dict[str, list[str]] = {}
        self._tokens: list[tuple[str, float | None]] = []
        self._detailed = False
        self._reasoning: list[str] = []
        self.tool_calls: list[ToolCallPart] = []
        """The calls the model asked for in the round open now."""
        self.added = False
        """Whether anything of the answer (text, reasoning, a tool call) came since it
        was built (beyond the ``prefix``)."""
        prefix = tuple(prefix)
        self.rounds: list[ToolRound] = tool_rounds(prefix)
        """Rounds that ended: the text before the calls, the calls, their results."""
        if self.rounds:
            self._text.append(final_text(prefix))
        for part in prefix:
            if isinstance(part, TextPart):
                if not self.rounds:
                    self._text.append(part.text)
            elif isinstance(part, NodePart):
                self._nodes.setdefault(part.node, []).append(part.text)
            elif isinstance(part, ReasoningPart):
                self._reasoning.append(part.text)
            elif isinstance(part, TokensPart):
                self._tokens.extend(part.tokens)
                self._detailed = True
            elif isinstance(part, ToolCallPart) and not self.rounds:
                self.tool_calls.append(part)

    def asked(self) -> list[ToolCallRequested]:
        """The calls of the round open now, as the tools take them."""
        return [ToolCallRequested(c.name, c.arguments, c.call_id) for c in self.tool_calls]

    def end_round(self, results: Iterable[ToolResult]) -> None:
        """The tools of the round open now have run: keep the round (its text, calls
        and ``results``) and start the next with no text."""
        kept = [ToolResultPart(r.call_id, r.content, r.is_error, r.name) for r in results]
        self.rounds.append((self.text, list(self.tool_calls), kept))
        self._text.clear()
        self.tool_calls.clear()

    def add(self, batch: Iterable[Event]) -> None:
        """Take one batch of events (those that are not part of the answer are skipped)."""
        for event in batch:
            match event:
                case TextDelta(special=True):
                    pass
                case TextDelta():
                    self.added = True
                    if event.node_id is None:
                        self._text.append(event.text)
                    else:
                        self._nodes.setdefault(event.node_id, []).append(event.text)
                    if event.logprob is not None or self._detailed:
                        self._detailed = True
                        self._tokens.append((event.text, event.logprob))
                case ReasoningDelta():
                    self.added = True
                    self._reasoning.append(event.text)
                case ToolCallRequested():
                    self.added = True
                    self.tool_calls.append(ToolCallPart(event.name, event.arguments, event.id))
                case Finish() | Retrying():
                    pass

    @property
    def text(self) -> str:
        """The text outside any node so far."""
        return _joined(self._text)

    @property
    def reasoning(self) -> str:
        return _joined(self._reasoning)

    def parts(self) -> tuple[Part, ...]:
        """The answer's parts now: reasoning, each tool round (text, calls, results),
        text, nodes, tokens, the calls of the round open now."""
        parts: list[Part] = []
        if self.reasoning:
            parts.append(ReasoningPart(self.reasoning))
        for text, calls, results in self.rounds:
            parts.append(TextPart(text))
            parts.extend(calls)
            parts.extend(results)
        if self.text or not self._nodes:
            parts.append(TextPart(self.text))
        parts.extend(NodePart(node, _joined(texts)) for node, texts in self._nodes.items())
        if self._detailed:
            parts.append(TokensPart(tuple(self._tokens)))
        parts.extend(self.tool_calls)
        return tuple(parts)
