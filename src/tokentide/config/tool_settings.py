"""The config file's tool keys, checked when it loads (each error names its line).

    approve = "ask"                  # or "all", "none"
    allow_tools = ["add", "files.*"] # run without asking
    mcp = ["~/mcp.json"]             # {"mcpServers": {...}} files
    functions = ["~/tools.py"]       # Python files whose functions are tools
    max_tool_rounds = 8
    tool_timeout = 60                # seconds per call; false: none

    [mcp_servers.calc]               # one MCP server, the mcpServers entry's keys
    command = "python"
    args = ["calc_server.py"]
    env = { TOKEN = "${CALC_TOKEN}" }
    trust = true

What a server entry means (stdio or HTTP, ``${VAR}`` expansion) is read by
:mod:`tokentide.tools.mcp_config`; here only the shape of each key is checked, so a
file with a typo fails at once, with its line, and not when the first tool is used.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final, cast

from tokentide.config import validate as v
from tokentide.config.model import Approve, ToolSettings
from tokentide.errors import ConfigError

__all__ = ["APPROVE", "SERVER_KEYS", "TOP_KEYS", "parse_tool_settings"]

APPROVE: Final[tuple[Approve, ...]] = ("ask", "all", "none")
TOP_KEYS: Final = frozenset(
    {"approve", "allow_tools", "mcp", "mcp_servers", "functions", "max_tool_rounds", "tool_timeout"}
)
SERVER_KEYS: Final = frozenset({"command", "args", "env", "cwd", "url", "headers", "type", "trust"})
MAX_TOOL_ROUNDS: Final = 100


def approve_value(value: Any, where: v.Where) -> Approve:
    if value not in APPROVE:
        raise ConfigError(
            f'{v.at(where)}approve must be "ask", "all" or "none", not {value!r}.',
            hint='"ask" asks before each call; "all" runs every call; "none" refuses them.',
        )
    return cast(Approve, value)


def strings(value: Any, what: str, where: v.Where, *, one: bool = True) -> tuple[str, ...]:
    """A list of strings (``one``: a single string is taken as a list of one; not for a
    program's ``args``, where ``"a b"`` would be one argument with a space)."""
    if one and isinstance(value, str):
        return (value,)
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ConfigError(f'{v.at(where)}{what} must be a list of strings, like {what} = ["..."].')
    return tuple(value)


def parse_tool_settings(
    document: Mapping[str, Any],
    where: Callable[[str], v.Where],
    server_where: Callable[[str, str | None], v.Where],
) -> ToolSettings:
    """The tool keys of a config file's top level.  ``where(key)`` gives the prefix of an
    error about a top-level key, ``server_where(name, key)`` one inside
    ``[mcp_servers.NAME]``."""
    if not TOP_KEYS & document.keys():
        return ToolSettings()
    defaults = ToolSettings()
    servers = v.table(document.get("mcp_servers", {}), "mcp_servers", where("mcp_servers"))
    for name, table in servers.items():
        _check_server(name, table, server_where)
    timeout = defaults.timeout
    if "tool_timeout" in document:
        timeout = v.timeout(document["tool_timeout"], "tool_timeout", where("tool_timeout"))
    rounds = defaults.max_rounds
    if "max_tool_rounds" in document:
        rounds = v.count(
            document["max_tool_rounds"], "max_tool_rounds", where("max_tool_rounds"),
            minimum=1, maximum=MAX_TOOL_ROUNDS,
        )  # fmt: skip

    def listed(key: str) -> tuple[str, ...]:
        return strings(document[key], key, where(key)) if key in document else ()

    return ToolSettings(
        mcp_files=listed("mcp"),
        mcp_servers={name: dict(table) for name, table in servers.items()},
        functions=listed("functions"),
        approve=approve_value(document["approve"], where("approve"))
        if "approve" in document
        else defaults.approve,
        allow_tools=listed("allow_tools"),
        max_rounds=rounds,
        timeout=timeout,
    )


def _check_server(
    name: str, table: Any, server_where: Callable[[str, str | None], v.Where]
) -> None:
    if not isinstance(table, dict):
        raise ConfigError(
            f"{v.at(server_where(name, None))}mcp_servers.{name!r} must be a table: "
            "[mcp_servers.NAME]."
        )
    unknown = sorted(set(table) - SERVER_KEYS)
    if unknown:
        raise ConfigError(
            f"{v.at(server_where(name, unknown[0]))}MCP server {name!r}: unknown key "
            f"{unknown[0]!r}." + v.did_you_mean(unknown[0], SERVER_KEYS),
            hint="An MCP server takes command, args, env, cwd (a program it starts) or url, "
            "headers (a server over HTTP), and trust.",
        )
    if ("command" in table) == ("url" in table):
        raise ConfigError(
            f"{v.at(server_where(name, None))}MCP server {name!r} needs a command (a program "
            "to start) or a url (a server over HTTP), not "
            + ("both." if "command" in table else "neither."),
        )
    for key in ("command", "cwd", "url", "type"):
        if key in table:
            v.string(table[key], key, server_where(name, key))
    if "args" in table:
        strings(table["args"], "args", server_where(name, "args"), one=False)
    for key in ("env", "headers"):
        if key in table:
            values = v.table(table[key], key, server_where(name, key))
            for item in values.values():
                v.string(item, key, server_where(name, key))
    if "trust" in table and not isinstance(table["trust"], bool):
        raise ConfigError(
            f"{v.at(server_where(name, 'trust'))}trust must be true or false, not {table['trust']!r}."
        )
