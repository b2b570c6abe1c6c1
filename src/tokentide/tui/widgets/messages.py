"""The widgets of one conversation: the user's prompts, the assistant's answers, errors.

The answer (:class:`AssistantMessage`, with its reasoning, node blocks and token view) is
here; a prompt is :mod:`.user_message`'s and a failure :mod:`.error_message`'s, both
importable from here too.

Each ships the CSS it needs to lay out (``DEFAULT_CSS``: heights, margins, padding), so
it works mounted anywhere; the app's stylesheet only gives it colours and borders.

Every piece of text from a model or a server goes through :mod:`tokentide.sanitize`
before it is shown (Rich and Textual pass escape sequences through);
:class:`~tokentide.tui.widgets.markdown_view.MarkdownMessage` sanitises its own input.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Label, Static

from tokentide.backends.events import TextDelta, ToolCallRequested
from tokentide.backends.tool_spec import ToolResult
from tokentide.chat.parts import ToolCallPart, ToolResultPart, node_section
from tokentide.sanitize import sanitize
from tokentide.tui.plain import plain
from tokentide.tui.widgets.error_message import ErrorMessage
from tokentide.tui.widgets.markdown_view import MarkdownMessage
from tokentide.tui.widgets.tool_block import ToolBlock
from tokentide.tui.widgets.user_message import UserMessage

if TYPE_CHECKING:
    from tokentide.tools import ToolSource

__all__ = [
    "AssistantMessage",
    "ErrorMessage",
    "NodeBlock",
    "TokenView",
    "UserMessage",
    "last_code_block",
    "shade_tokens",
]

_FENCE_OPEN = re.compile(r"^ {0,3}(`{3,}|~{3,})")


def last_code_block(markdown: str) -> str | None:
    """The body of the last fenced code block in ``markdown`` (an unclosed fence at the
    end counts, as while streaming), or None."""
    last: str | None = None
    fence: str | None = None
    body: list[str] = []
    for line in markdown.split("\n"):
        if fence is None:
            opening = _FENCE_OPEN.match(line)
            if opening is not None:
                fence, body = opening.group(1), []
            continue
        closing = line.strip()
        if closing.startswith(fence) and closing == fence[0] * len(closing):
            last, fence = "\n".join(body), None
        else:
            body.append(line)
    if fence is not None:
        last = "\n".join(body)
    return last


def shade_tokens(tokens: Iterable[tuple[str, float | None]]) -> Text:
    """Tokens on a background from red (improbable) to green (certain), by probability."""
    text = Text()
    for piece, logprob in tokens:
        shown = sanitize(piece)
        if logprob is None:
            text.append(shown)
            continue
        p = min(1.0, max(0.0, math.exp(logprob)))
        red = round(150 * (1 - p))
        green = round(110 * p)
        text.append(shown, Style(bgcolor=f"rgb({red},{green},40)", color="white"))
    return text


class NodeBlock(Vertical):
    """One node's output in a multi-node (Substrate-style) answer."""

    DEFAULT_CSS = """
    NodeBlock {
        height: auto;
        margin: 1 0 0 0;
        padding: 0 1;
    }
    """

    def __init__(self, node: str, text: str = "", *, streaming: bool = False) -> None:
        super().__init__(classes="node-block")
        self.node = node
        self.markdown = MarkdownMessage(text, streaming=streaming)
        self.raw: list[str] = [text] if text else []
        """The exact text received (the widget keeps a sanitised copy)."""

    @property
    def source(self) -> str:
        return "".join(self.raw)

    def append(self, text: str) -> None:
        self.raw.append(text)
        self.markdown.append(text)

    def compose(self) -> ComposeResult:
        yield Label(Text(sanitize(self.node)), classes="node-label")
        yield self.markdown


class TokenView(Static):
    """The answer as tokens shaded by probability (the token-detail toggle)."""

    DEFAULT_CSS = """
    TokenView {
        height: auto;
    }
    """


REASONING_TAIL = 2_000
"""Characters of reasoning kept for display while an answer streams."""
REASONING_LINES = 4


def _saved_block(call: ToolCallPart, result: ToolResultPart | None) -> ToolBlock:
    """The block of a saved answer's call (one stopped before its result says so)."""
    asked = ToolCallRequested(call.name, call.arguments, call.call_id)
    if result is None:
        return ToolBlock(asked, stopped=STOPPED_CALL)
    done = ToolResult(result.call_id, result.name or call.name, result.content, result.is_error)
    return ToolBlock(asked, result=done)


STOPPED_CALL = "stopped before it ended"
UNRUN_CALL = "not run: stopped before it ran"


class AssistantMessage(Vertical, can_focus=True):
    """One answer: Markdown (streamed or finished), per-node blocks, token details.

    A live answer starts empty with ``streaming=True`` and grows with :meth:`add` and
    :meth:`add_reasoning`.  A finished one (a saved answer) is built whole from its
    parts (:class:`~tokentide.chat.tree.Turn`): ``text`` is the answer outside any node,
    ``reasoning`` the model's reasoning (shown as the one-line summary a finished live
    answer shows), ``tokens`` the per-token logprobs (for the token-detail toggle) and
    ``nodes`` the ``(node id, text)`` blocks of a multi-node answer.  What is saved is
    built from the generation's events by the chat session, not read from here.
    """

    DEFAULT_CSS = """
    AssistantMessage {
        height: auto;
        margin: 1 0 0 0;
        padding: 0 1;
    }
    AssistantMessage > .reasoning, AssistantMessage > .answer-notice {
        height: auto;
        padding: 0 1;
    }
    """

    def __init__(
        self,
        text: str = "",
        *,
        streaming: bool = False,
        label: str | None = None,
        note: str | None = None,
        status: str = "complete",
        id: str | None = None,
        reasoning: str = "",
        tokens: Iterable[tuple[str, float | None]] = (),
        nodes: Iterable[tuple[str, str]] = (),
        tools: Iterable[tuple[ToolCallPart, ToolResultPart | None]] = (),
    ) -> None:
        super().__init__(id=id, classes="message assistant")
        self.tool_blocks: list[ToolBlock] = [_saved_block(call, result) for call, result in tools]
        """The answer's tool calls, in order, above its text."""
        self.main = MarkdownMessage(text, streaming=streaming)
        self._raw: list[str] = [text] if text else []
        self.nodes: dict[str, NodeBlock] = {}
        self.node_order: list[str] = []
        self.tokens: list[tuple[str, float | None]] = list(tokens)
        self._detailed = bool(self.tokens)
        self._token_view: TokenView | None = None
        self._streaming = streaming
        self._reasoning_view: Static | None = None
        self._reasoning: list[str] = [reasoning] if reasoning else []
        self._reasoning_tail = reasoning[-REASONING_TAIL:]
        self._reasoning_chars = len(reasoning)
        texts: dict[str, list[str]] = {}
        for node, node_text in nodes:
            texts.setdefault(node, []).append(node_text)
        for node, parts in texts.items():
            self.nodes[node] = NodeBlock(node, "".join(parts), streaming=streaming)
            self.node_order.append(node)
        self.label = label or ""
        self._versions = ""
        if label:
            self.border_title = plain(label)
        if note:
            self.border_subtitle = plain(note)
        self.set_status(status)

    def compose(self) -> ComposeResult:
        if self._reasoning_chars and self._reasoning_view is None:
            self._reasoning_view = Static(self._reasoning_text(), classes="reasoning", markup=False)
            yield self._reasoning_view
        yield from self.tool_blocks
        yield self.main
        for node in self.node_order:
            yield self.nodes[node]

    # -- streaming ----------------------------------------------------------------------

    def add(self, deltas: Sequence[TextDelta]) -> None:
        """Append one batch of text events (cheap: one append per block per batch)."""
        by_node: dict[str | None, list[str]] = {}
        for delta in deltas:
            if delta.special:
                continue
            by_node.setdefault(delta.node_id, []).append(delta.text)
            if delta.logprob is not None or self._detailed:
                if not self._detailed:
                    self._detailed = True
                self.tokens.append((delta.text, delta.logprob))
        for node, texts in by_node.items():
            joined = "".join(texts)
            if node is None:
                self._raw.append(joined)
                self.main.append(joined)
            else:
                self._node_block(node).append(joined)

    def add_tool(
        self, call: ToolCallRequested, source: ToolSource | None, denied: str | None = None
    ) -> ToolBlock:
        """A tool call decided while the answer streams: its block, above the text."""
        block = ToolBlock(call, source, denied=denied)
        self.tool_blocks.append(block)
        self.mount(block, before=self.main)
        return block

    def settle_tools(self, calls: Sequence[tuple[ToolCallPart, ToolResultPart | None]]) -> None:
        """The answer ended: a call still running is marked stopped, and a call the
        answer holds that was never shown (stopped while the user was asked) gets its
        block."""
        for block in self.tool_blocks:
            if block.result is None and block.denied is None and block.stopped is None:
                block.stop(STOPPED_CALL)
        for call, _result in calls[len(self.tool_blocks) :]:
            asked = ToolCallRequested(call.name, call.arguments, call.call_id)
            block = ToolBlock(asked, stopped=UNRUN_CALL)
            self.tool_blocks.append(block)
            self.mount(block, before=self.main)

    def tool_finished(self, call: ToolCallRequested, result: ToolResult) -> None:
        """A call's result, on its block."""
        for block in reversed(self.tool_blocks):
            if block.call == call and block.result is None:
                block.set_result(result, denied=block.denied)
                return

    def add_notice(self, text: str) -> None:
        """A line under the answer that is about it, not part of it (a tool call the
        model asked for): shown as plain text, never sent back or saved as the answer."""
        self.mount(Static(plain(text), classes="answer-notice", markup=False))

    def add_reasoning(self, text: str) -> None:
        """Show the model's reasoning ("thinking") above the answer while it streams:
        the last few lines, dim; a one-line summary once the answer is finished."""
        if text:
            self._reasoning.append(text)
        self._reasoning_chars += len(text)
        self._reasoning_tail = (self._reasoning_tail + text)[-REASONING_TAIL:]
        if self._reasoning_view is None:
            if not self.main.is_mounted:
                # Reasoning can arrive before this message has finished mounting;
                # mounting "before" an unmounted widget would fail: show it then.
                self.call_after_refresh(self._show_reasoning)
                return
            self._reasoning_view = Static("", classes="reasoning", markup=False)
            self.mount(self._reasoning_view, before=self.main)
        self._show_reasoning()

    def _show_reasoning(self) -> None:
        if self._reasoning_view is None:
            self.add_reasoning("")
            return
        self._reasoning_view.update(self._reasoning_text())

    def _reasoning_text(self) -> Text:
        """The last lines of the reasoning while streaming; then a one-line summary."""
        if self._streaming:
            lines = sanitize(self._reasoning_tail).splitlines()[-REASONING_LINES:]
            return Text("\n".join(lines), style="italic")
        return Text(f"reasoned for {self._reasoning_chars:,} characters", style="italic")

    def _node_block(self, node: str) -> NodeBlock:
        block = self.nodes.get(node)
        if block is None:
            block = NodeBlock(node, streaming=True)
            self.nodes[node] = block
            self.node_order.append(node)
            self.mount(block)
        return block

    def finish(self, status: str, note: str | None = None) -> None:
        self._streaming = False
        if self._reasoning_view is not None:
            self._reasoning_view.update(self._reasoning_text())
        self.main.finish()
        for block in self.nodes.values():
            block.markdown.finish()
        self.set_status(status)
        if note is not None:
            self.border_subtitle = plain(note)

    def set_status(self, status: str) -> None:
        for name in ("stopped", "error", "streaming"):
            self.set_class(status == name, f"-{name}")

    def set_label(self, label: str) -> None:
        """The title: who answered (the model, as the server named it)."""
        self.label = label
        self._show_title()

    def set_versions(self, versions: str) -> None:
        """``‹ 2/3 ›`` beside the title when the answer has other versions ("": none)."""
        if versions != self._versions:
            self._versions = versions
            self._show_title()

    def _show_title(self) -> None:
        label = f"{self.label}  {self._versions}" if self._versions else self.label
        self.border_title = plain(label)

    # -- reading ------------------------------------------------------------------------

    @property
    def source(self) -> str:
        """The exact answer (unsanitised: sanitise before showing or copying); a
        multi-node answer with each node's text under its name in bold."""
        main = "".join(self._raw)
        if not self.nodes:
            return main
        parts = [main] if main else []
        parts.extend(node_section(node, self.nodes[node].source) for node in self.node_order)
        return "\n\n".join(parts)

    @property
    def reasoning(self) -> str:
        """The model's reasoning, exactly as received ("" when there was none)."""
        if len(self._reasoning) > 1:
            self._reasoning[:] = ["".join(self._reasoning)]
        return self._reasoning[0] if self._reasoning else ""

    @property
    def has_token_details(self) -> bool:
        return any(logprob is not None for _, logprob in self.tokens)

    def toggle_details(self) -> bool:
        """Switch between Markdown and shaded tokens; False if there are no details."""
        if not self.has_token_details:
            return False
        if self._token_view is None:
            self._token_view = TokenView(shade_tokens(self.tokens), classes="tokens")
            self.mount(self._token_view)
            self._set_details(True)
        else:
            showing = not self._token_view.display
            if showing:
                self._token_view.update(shade_tokens(self.tokens))
            self._set_details(showing)
        return True

    def _set_details(self, showing: bool) -> None:
        assert self._token_view is not None
        self._token_view.display = showing
        self.main.display = not showing
        for block in self.nodes.values():
            block.display = not showing
        self.set_class(showing, "-details")
