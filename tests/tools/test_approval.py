"""The approval rules, in their order (tokentide.tools.approval)."""

from __future__ import annotations

import pytest

from tokentide.backends.events import ToolCallRequested
from tokentide.errors import ConfigError
from tokentide.tools.approval import (
    Allow,
    ApprovalRules,
    Ask,
    ConversationApprovals,
    Deny,
    allow_flag,
    decide,
    parse_policy,
)
from tokentide.tools.status import ToolSource

CALL = ToolCallRequested(name="calc__add", arguments='{"a": 1}', id="c1")
ADD = ToolSource(tool="calc__add", original="add", source="calc", kind="mcp-stdio", where="calc")
TRUSTED = ToolSource(tool="t", original="t", source="safe", kind="mcp-http", where="u", trust=True)


def test_the_default_is_to_ask() -> None:
    assert decide(CALL, ADD, rules=ApprovalRules()) == Ask()


def test_none_denies_everything_with_a_reason_for_the_model() -> None:
    rules = ApprovalRules(policy="none", allow_tools=("*",))
    decision = decide(CALL, TRUSTED, rules=rules)
    assert isinstance(decision, Deny) and "approve = none" in decision.reason


def test_all_allows_everything() -> None:
    assert isinstance(decide(CALL, ADD, rules=ApprovalRules(policy="all")), Allow)


@pytest.mark.parametrize("pattern", ["calc__add", "calc.add", "calc.*", "calc__*"])
def test_allow_tool_matches_the_offered_name_or_server_dot_tool(pattern: str) -> None:
    decision = decide(CALL, ADD, rules=ApprovalRules(allow_tools=(pattern,)))
    assert decision == Allow(f"--allow-tool {pattern}")


@pytest.mark.parametrize("pattern", ["add", "other.*", "calc"])
def test_allow_tool_patterns_that_do_not_match(pattern: str) -> None:
    assert decide(CALL, ADD, rules=ApprovalRules(allow_tools=(pattern,))) == Ask()


def test_a_trusted_server_runs_without_asking() -> None:
    decision = decide(CALL, TRUSTED, rules=ApprovalRules())
    assert decision == Allow("MCP server 'safe' is trusted")


def test_always_for_this_tool_holds_for_the_conversation_only() -> None:
    conversation = ConversationApprovals()
    conversation.remember(ADD)
    renamed = ToolSource(tool="add", original="add", source="calc", kind="mcp-stdio", where="c")
    assert isinstance(
        decide(CALL, renamed, rules=ApprovalRules(), conversation=conversation), Allow
    )
    assert decide(CALL, ADD, rules=ApprovalRules(), conversation=ConversationApprovals()) == Ask()
    assert conversation.allowed() == (("calc", "add"),)
    conversation.forget(ADD)
    assert decide(CALL, ADD, rules=ApprovalRules(), conversation=conversation) == Ask()


def test_an_unknown_tool_runs_nothing_and_asks_nothing() -> None:
    assert isinstance(decide(CALL, None, rules=ApprovalRules(policy="ask")), Allow)


def test_the_flag_a_message_suggests_allows_the_tool() -> None:
    flag = allow_flag(ADD)
    assert flag == "--allow-tool calc.add"
    rules = ApprovalRules(allow_tools=(flag.split()[1],))
    assert isinstance(decide(CALL, ADD, rules=rules), Allow)


def test_policies_from_text() -> None:
    assert parse_policy(" ALL ") == "all"
    with pytest.raises(ConfigError, match="must be one of ask, all, none"):
        parse_policy("yes")
