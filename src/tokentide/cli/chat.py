"""``tide chat``: the Textual chat app (:mod:`tokentide.tui.app`), imported only when
the config and the conversation asked for are known to be good."""

from __future__ import annotations

from typing import Annotated

import typer

from tokentide.cli.context import fail, load_config
from tokentide.cli.options import AllowToolOpt, ApproveOpt, FunctionsOpt, McpOpt, ProfileOpt
from tokentide.errors import TideError

__all__ = ["chat"]


def chat(
    ctx: typer.Context,
    profile: ProfileOpt = None,
    continue_last: Annotated[
        bool, typer.Option("--continue", help="Open the last conversation.")
    ] = False,
    conversation: Annotated[
        str | None,
        typer.Option(
            "--conversation",
            help="Open this conversation: its id, or a unique prefix (tide history list).",
        ),
    ] = None,
    mcp: McpOpt = None,
    functions: FunctionsOpt = None,
    approve: ApproveOpt = None,
    allow_tool: AllowToolOpt = None,
) -> None:
    """Open the chat app."""
    from tokentide.chat.tool_setup import CommandLineTools
    from tokentide.config.load import resolve_profile

    try:
        settings = load_config(ctx)
        chosen = resolve_profile(settings, profile)
        if approve is not None:
            from tokentide.tools.approval import parse_policy

            parse_policy(approve, where="--approve")  # a usage error before Textual
        tools = CommandLineTools(
            mcp=tuple(mcp or ()),
            functions=tuple(functions or ()),
            approve=approve,
            allow=tuple(allow_tool or ()),
        )
        if conversation is not None:
            # The same prefixes as `tide history`, and its errors (exit 2), before Textual.
            from tokentide.history.lookup import resolve_conversation

            conversation = resolve_conversation(conversation)
    except TideError as error:
        raise fail(error) from None
    from tokentide.tui.app import run_chat  # deferred: pulls in Textual

    raise typer.Exit(
        code=run_chat(
            settings,
            chosen,
            conversation_id=conversation,
            continue_last=continue_last,
            tools=tools,
        )
    )
