"""The tools of a conversation, and one round of them: which calls may run (the
approval rules, the user's choices in this conversation, the user asked when the rules
say so), then the approved calls run at once and every call gets its result.

Used by the chat session (through :class:`~tokentide.chat.live.LiveAnswer`, which
loops model → tools → model) and by ``tide ask``.  The view says how to ask the user
(:data:`AskUser`: the app's dialog, a prompt on the terminal); without one, a call the
rules leave to the user raises :class:`ApprovalNeeded` before anything runs, which is
what ``tide ask`` in a pipe does.

What the views see of a round are :data:`ToolActivity` events, in the same batches as
the backend's events: :class:`ToolStarted` for each call once it is decided,
:class:`ToolFinished` with each result, :class:`ToolsStopped` when the rounds run out.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, TypeAlias

from tokentide.backends.base import GenerationRequest, is_continuation
from tokentide.backends.events import ToolCallRequested
from tokentide.backends.tool_spec import ToolResult, ToolSpec
from tokentide.chat.parts import Part, wire_messages
from tokentide.config.validate import MAX_TIMEOUT
from tokentide.errors import UsageError

if TYPE_CHECKING:
    from tokentide.tools import ApprovalRules, Toolbox, ToolSource

__all__ = [
    "ApprovalNeeded",
    "AskUser",
    "Choice",
    "ToolActivity",
    "ToolFinished",
    "ToolStarted",
    "ToolUse",
    "ToolsStopped",
]


@dataclass(frozen=True, slots=True)
class Choice:
    """What the user chose for one call: run it (``always``: and every later call of
    this tool in this conversation), or not, with a ``reason`` the model is told."""

    run: bool
    always: bool = False
    reason: str = ""


AskUser: TypeAlias = Callable[[ToolCallRequested, "ToolSource"], Awaitable[Choice]]


@dataclass(frozen=True, slots=True)
class ToolStarted:
    """A call was decided: it runs now (``denied`` None), or it was refused (the reason,
    which is also its result)."""

    call: ToolCallRequested
    source: ToolSource | None
    denied: str | None = None


@dataclass(frozen=True, slots=True)
class ToolFinished:
    """A call's result (untrusted text: sanitise before showing it)."""

    call: ToolCallRequested
    result: ToolResult


@dataclass(frozen=True, slots=True)
class ToolsStopped:
    """The model kept asking for tools after ``max_tool_rounds`` rounds: tide stopped."""

    note: str


ToolActivity: TypeAlias = ToolStarted | ToolFinished | ToolsStopped


class ApprovalNeeded(UsageError):
    """A call needs the user's yes and there is no one to ask (``tide ask`` in a pipe
    with ``approve = "ask"``).  Exit code 2; nothing ran."""

    def __init__(self, call: ToolCallRequested, source: ToolSource) -> None:
        from tokentide.chat.tool_text import source_text
        from tokentide.sanitize import sanitize

        name = sanitize(call.name)
        super().__init__(
            f"The model asked to run the tool {name} (from the {source_text(source)}), and tool calls "
            "need your approval, but there is no terminal to ask on.",
            hint=f"To let it run: --allow-tool {name} (or --approve all); to refuse every "
            "call: --approve none. In the config: allow_tools = [...], approve = ..., or "
            "trust = true on the MCP server.",
        )
        self.call = call
        self.source = source


class ToolUse:
    """See the module docstring.  One per conversation: the "always" choices last as
    long as it does."""

    def __init__(
        self,
        toolbox: Toolbox,
        rules: ApprovalRules,
        *,
        ask_user: AskUser | None = None,
        max_rounds: int = 8,
        timeout: float | None = 60.0,
    ) -> None:
        from tokentide.tools import ConversationApprovals

        self.toolbox = toolbox
        self.rules = rules
        self.ask_user = ask_user
        self.max_rounds = max_rounds
        self.timeout = MAX_TIMEOUT if timeout is None else timeout
        """Each call's deadline (``tool_timeout = false``: the config's longest, a year)."""
        self.approvals = ConversationApprovals()

    def forget_choices(self) -> None:
        """Another conversation: the tools allowed "always" are asked about again."""
        from tokentide.tools import ConversationApprovals

        self.approvals = ConversationApprovals()

    def specs(self) -> tuple[ToolSpec, ...]:
        """The tools to offer now (an MCP server still starting offers none yet)."""
        return self.toolbox.specs()

    def next_request(self, first: GenerationRequest, parts: Sequence[Part]) -> GenerationRequest:
        """The request of the round after a round of tools: ``first`` (the answer's
        first request) with the answer so far, ``parts``, as calls, results and text,
        and the tools offered now.  A continued answer's last message is in ``parts``."""
        messages = list(first.messages)
        if is_continuation(first):
            messages.pop()
        messages.extend(wire_messages(parts))
        return replace(first, messages=tuple(messages), tools=self.specs())

    def stopped_note(self) -> str:
        return (
            f"Stopped after {self.max_rounds} tool round{'s' if self.max_rounds != 1 else ''}: "
            "the model kept asking for tools (max_tool_rounds in the config)."
        )

    async def decide(self, calls: Sequence[ToolCallRequested]) -> list[ToolStarted]:
        """Each call decided, in order (the user is asked one call at a time)."""
        from tokentide.tools import Allow, Deny, decide

        decided: list[ToolStarted] = []
        for call in calls:
            source = self.toolbox.source_of(call.name)
            decision = decide(call, source, rules=self.rules, conversation=self.approvals)
            if isinstance(decision, Allow):
                decided.append(ToolStarted(call, source))
            elif isinstance(decision, Deny):
                decided.append(ToolStarted(call, source, denied=decision.reason))
            else:
                assert source is not None  # an unknown tool is never left to the user
                if self.ask_user is None:
                    raise ApprovalNeeded(call, source)
                choice = await self.ask_user(call, source)
                if choice.run and choice.always:
                    self.approvals.remember(source)
                reason = choice.reason.strip()
                refused = f"the user said: {reason}" if reason else "the user said no"
                decided.append(ToolStarted(call, source, None if choice.run else refused))
        return decided

    async def run(self, decided: Sequence[ToolStarted]) -> list[ToolResult]:
        """Run the calls that may run, all at once; a refused call's result is its
        reason.  Results in call order."""
        running = [d.call for d in decided if d.denied is None]
        ran = iter(await self.toolbox.call_many(running, timeout=self.timeout) if running else [])
        results: list[ToolResult] = []
        for item in decided:
            if item.denied is None:
                results.append(next(ran))
            else:
                results.append(
                    ToolResult(
                        item.call.id, item.call.name,
                        f"The user did not allow this call ({item.denied}).", is_error=True,
                    )
                )  # fmt: skip
        return results
