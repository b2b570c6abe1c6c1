"""Whether a tool call may run: the approval rules as pure logic, no UI.

:func:`decide` answers :class:`Allow`, :class:`Deny` (its reason goes back to the
model as the call's error result) or :class:`Ask` (the app shows its dialog; ``tide
ask`` without a terminal exits 2 naming the tool).  In order:

1. a tool that does not exist: :class:`Allow` — nothing runs; the toolbox answers the
   model with an error listing the tools that do exist, with no dialog for it;
2. policy ``none`` (``--approve none``): :class:`Deny`, whatever else is configured;
3. policy ``all`` (``--approve all``): :class:`Allow`;
4. "always for this tool in this conversation", chosen in the dialog
   (:class:`ConversationApprovals`): :class:`Allow`;
5. ``--allow-tool NAME`` / ``allow_tools``: :class:`Allow` when a pattern matches the
   name the model called, or ``SERVER.TOOL`` (the tool's own name in its source), with
   shell wildcards: ``calc.*`` is every tool of the server ``calc``;
6. ``trust = true`` on the tool's MCP server: :class:`Allow`;
7. otherwise (policy ``ask``, the default): :class:`Ask`.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Final, Literal, get_args

from tokentide.backends.events import ToolCallRequested
from tokentide.errors import ConfigError
from tokentide.tools.status import ToolSource

__all__ = [
    "DEFAULT_POLICY",
    "Allow",
    "ApprovalRules",
    "Ask",
    "ConversationApprovals",
    "Decision",
    "Deny",
    "Policy",
    "allow_flag",
    "decide",
    "parse_policy",
]

Policy = Literal["ask", "all", "none"]
DEFAULT_POLICY: Final[Policy] = "ask"


@dataclass(frozen=True, slots=True)
class Allow:
    """Run it.  ``reason`` says which rule allowed it (for the log and ``--json``)."""

    reason: str


@dataclass(frozen=True, slots=True)
class Deny:
    """Do not run it; ``reason`` is sent to the model as the call's error result."""

    reason: str


@dataclass(frozen=True, slots=True)
class Ask:
    """The user decides (the dialog: run once / always for this tool / deny)."""


Decision = Allow | Deny | Ask


def parse_policy(value: str, *, where: str = "approve") -> Policy:
    """``ask``/``all``/``none`` from a flag or the config; anything else is a
    :class:`~tokentide.errors.ConfigError`."""
    text = value.strip().lower()
    for policy in get_args(Policy):
        if text == policy:
            return policy  # type: ignore[no-any-return]
    raise ConfigError(f"{where} = {value!r}: must be one of ask, all, none")


@dataclass(frozen=True, slots=True)
class ApprovalRules:
    """What the command line and the config say (the conversation's choices are in
    :class:`ConversationApprovals`)."""

    policy: Policy = DEFAULT_POLICY
    allow_tools: tuple[str, ...] = ()
    """``--allow-tool`` patterns: a tool name, or ``SERVER.TOOL``, wildcards allowed."""

    def allows(self, source: ToolSource) -> str | None:
        """The pattern that allows this tool, if one does."""
        names = (source.tool, f"{source.source}.{source.original}")
        for pattern in self.allow_tools:
            if any(fnmatch.fnmatchcase(name, pattern) for name in names):
                return pattern
        return None


@dataclass(slots=True)
class ConversationApprovals:
    """The tools the user allowed "always" in one conversation (kept by the session,
    not saved: a reopened conversation asks again).  Keyed by the source and the tool's
    own name, so a tool renamed by a new clash stays allowed."""

    _allowed: set[tuple[str, str]] = field(default_factory=set)

    def remember(self, source: ToolSource) -> None:
        self._allowed.add((source.source, source.original))

    def forget(self, source: ToolSource) -> None:
        self._allowed.discard((source.source, source.original))

    def __contains__(self, source: ToolSource) -> bool:
        return (source.source, source.original) in self._allowed

    def allowed(self) -> tuple[tuple[str, str], ...]:
        """``(source, tool)`` pairs allowed so far, sorted."""
        return tuple(sorted(self._allowed))


def allow_flag(source: ToolSource) -> str:
    """The ``--allow-tool`` that would allow this tool, for a message ("run again with
    --allow-tool calc.add, or --approve all")."""
    return f"--allow-tool {source.source}.{source.original}"


def decide(
    call: ToolCallRequested,
    source: ToolSource | None,
    *,
    rules: ApprovalRules,
    conversation: ConversationApprovals | None = None,
) -> Decision:
    """The decision for one call (see the module docstring for the order)."""
    if source is None:
        return Allow(f"no tool is named {call.name!r}: nothing runs, the model is told")
    if rules.policy == "none":
        return Deny(
            f"the user does not allow tool calls (approve = none); {source.tool} did not run"
        )
    if rules.policy == "all":
        return Allow("approve = all")
    if conversation is not None and source in conversation:
        return Allow("allowed always in this conversation")
    pattern = rules.allows(source)
    if pattern is not None:
        return Allow(f"--allow-tool {pattern}")
    if source.trust:
        return Allow(f"MCP server {source.source!r} is trusted")
    return Ask()
