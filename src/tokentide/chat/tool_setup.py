"""A conversation's tools from the config file and the command line, for the app and
for ``tide ask`` alike.

Sources add up: the config's ``mcp`` files and ``[mcp_servers.NAME]``, its
``functions`` and the profile's, then ``--mcp`` and ``--functions``.  The rules: the
command line's ``--approve`` beats the config's ``approve``; ``--allow-tool`` adds to
``allow_tools``.  A path in the config file is relative to that file; one on the
command line, to the current directory.  Nothing is started here (see
:meth:`tokentide.tools.Toolbox.start`); files are read and imported now, so a broken
one is an error before the first prompt.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tokentide.chat.tool_use import AskUser, ToolUse

if TYPE_CHECKING:
    from tokentide.config.model import Profile, Settings

__all__ = ["CommandLineTools", "tool_use_from"]


@dataclass(frozen=True, slots=True)
class CommandLineTools:
    """What ``--mcp``, ``--functions``, ``--approve`` and ``--allow-tool`` said."""

    mcp: tuple[str, ...] = ()
    functions: tuple[str, ...] = ()
    approve: str | None = None
    allow: tuple[str, ...] = ()


def _from_config(settings: Settings, names: Sequence[str]) -> list[Path]:
    base = Path(settings.path).parent if settings.path else Path.cwd()
    return [base / Path(name).expanduser() for name in names]


def tool_use_from(
    settings: Settings,
    profile: Profile,
    given: CommandLineTools | None = None,
    *,
    ask_user: AskUser | None = None,
    environ: Mapping[str, str] | None = None,
) -> ToolUse | None:
    """The conversation's tools, or None when nothing configures any (then nothing of
    the tools machinery is imported).  ConfigError for a broken file or value."""
    given = given or CommandLineTools()
    tools = settings.tools
    if not (tools.configured or profile.functions or given.mcp or given.functions):
        return None
    from tokentide.tools import ApprovalRules, build_toolbox, parse_policy, parse_servers

    env = os.environ if environ is None else environ
    source = settings.path or "the config"
    servers = (
        parse_servers(tools.mcp_servers, source=source, environ=env) if tools.mcp_servers else ()
    )
    # No deadline given here: ToolUse gives each call its own (tool_timeout).
    toolbox = build_toolbox(
        mcp_files=[
            *_from_config(settings, tools.mcp_files),
            *(Path(p).expanduser() for p in given.mcp),
        ],
        servers=servers,
        function_files=[
            *_from_config(settings, (*tools.functions, *profile.functions)),
            *(Path(p).expanduser() for p in given.functions),
        ],
        environ=env,
    )
    policy = parse_policy(given.approve, where="--approve") if given.approve else tools.approve
    rules = ApprovalRules(policy=policy, allow_tools=(*tools.allow_tools, *given.allow))
    return ToolUse(
        toolbox, rules, ask_user=ask_user, max_rounds=tools.max_rounds, timeout=tools.timeout
    )
