"""MCP server definitions: the ``{"mcpServers": {...}}`` JSON that Claude Desktop, oterm
and most MCP clients read, parsed into frozen dataclasses.

One shape per transport, told apart by the keys present (or by ``"type"``):

* :class:`StdioServer` — ``command`` (+ ``args``, ``env``, ``cwd``): a subprocess spoken
  to over its stdin/stdout;
* :class:`HttpServer` — ``url`` (+ ``headers``): the streamable HTTP transport.

Both take ``trust`` (tokentide's own key: its calls run without asking, see
:mod:`tokentide.tools.approval`) and ``disabled`` (Cline's and Roo's key: the server is
skipped), so a file written for another client loads unchanged; any other key in a
server is an error naming it, because a misspelt ``"arg"`` silently ignored would start
the server without its arguments.  Keys beside ``mcpServers`` at the top level are
ignored: ``--mcp`` may point at Claude Desktop's own config file, which holds the app's
other settings too.

``${VAR}`` (and ``${VAR:-default}``) in ``env`` and ``headers`` values is expanded from
the environment mapping given (the process environment, normally); a missing variable
is a :class:`~tokentide.errors.ConfigError` naming the server and the variable.  A bare
``$VAR`` is *not* expanded: tokens and passwords contain ``$`` often enough that
guessing would corrupt them.  Expanded values are registered as secrets
(:func:`tokentide.redact.register_secret`), and no ``repr`` shows an env or header
value, so neither a log line nor a traceback carries one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

from tokentide.errors import ConfigError
from tokentide.redact import register_secret

__all__ = [
    "HttpServer",
    "McpServerConfig",
    "StdioServer",
    "expand",
    "load_mcp_file",
    "parse_mcp_json",
    "parse_servers",
]

_EMPTY: Final[Mapping[str, str]] = MappingProxyType({})


def _masked(values: Mapping[str, str]) -> str:
    return "{" + ", ".join(f"{key!r}: '***'" for key in values) + "}"


@dataclass(frozen=True, slots=True)
class StdioServer:
    """A server tokentide starts as a subprocess (``command`` and ``args``)."""

    name: str
    command: str
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=lambda: _EMPTY, repr=False)
    """Added to the SDK's safe default environment (``PATH``, ``HOME``, ``USER`` …);
    values already expanded.  Never shown: see :meth:`__repr__`."""
    cwd: str | None = None
    trust: bool = False
    source: str = ""
    """Where it was defined (a file path, ``config``), for messages."""

    def __repr__(self) -> str:
        return (
            f"StdioServer(name={self.name!r}, command={self.command!r}, args={self.args!r}, "
            f"env={_masked(self.env)}, cwd={self.cwd!r}, trust={self.trust!r})"
        )

    @property
    def where(self) -> str:
        """What the server is, in a message: its command line."""
        return " ".join([self.command, *self.args])


@dataclass(frozen=True, slots=True)
class HttpServer:
    """A server tokentide connects to over streamable HTTP (``url``)."""

    name: str
    url: str
    headers: Mapping[str, str] = field(default_factory=lambda: _EMPTY, repr=False)
    """Sent with every request; values already expanded.  Never shown."""
    trust: bool = False
    source: str = ""

    def __repr__(self) -> str:
        return (
            f"HttpServer(name={self.name!r}, url={self.url!r}, "
            f"headers={_masked(self.headers)}, trust={self.trust!r})"
        )

    @property
    def where(self) -> str:
        return self.url


McpServerConfig = StdioServer | HttpServer

_STDIO_KEYS: Final = frozenset({"command", "args", "env", "cwd"})
_HTTP_KEYS: Final = frozenset({"url", "headers"})
_COMMON_KEYS: Final = frozenset({"type", "trust", "disabled"})
_KNOWN_KEYS: Final = _STDIO_KEYS | _HTTP_KEYS | _COMMON_KEYS
_TYPES: Final = {
    "stdio": "stdio",
    "http": "http",
    "streamable-http": "http",
    "streamableHttp": "http",
}
_SECRET_NAME: Final = re.compile(r"(?i)token|key|secret|passw|auth|credential|cookie")
_VARIABLE: Final = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand(
    value: str,
    environ: Mapping[str, str],
    *,
    server: str,
    key: str,
    used: list[str] | None = None,
) -> str:
    """``value`` with every ``${VAR}`` / ``${VAR:-default}`` replaced from ``environ``;
    the values taken from it are appended to ``used``.

    The error names the server, the key and the variable, never a value.
    """

    def one(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in environ:
            if used is not None:
                used.append(environ[name])
            return environ[name]
        if default is not None:
            return default
        raise ConfigError(
            f"MCP server {server!r}: {key} uses ${{{name}}}, which is not set in the environment",
            hint=f"Set {name} before starting tide, or write ${{{name}:-default}} in the file.",
        )

    return _VARIABLE.sub(one, value)


def _fail(server: str, source: str, message: str, hint: str | None = None) -> ConfigError:
    where = f" in {source}" if source else ""
    return ConfigError(f"MCP server {server!r}{where}: {message}", hint=hint)


def _strings(value: object, *, server: str, source: str, key: str) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise _fail(server, source, f"{key!r} must be an object of strings")
    out: dict[str, str] = {}
    for name, item in value.items():
        if not isinstance(name, str) or not isinstance(item, str | int | float | bool):
            raise _fail(server, source, f"{key!r} must map names to strings ({name!r} does not)")
        out[name] = str(item).lower() if isinstance(item, bool) else str(item)
    return out


def _expanded(
    values: dict[str, str], environ: Mapping[str, str], *, server: str, key: str
) -> Mapping[str, str]:
    """Expanded values; registered as secrets: whatever came from the environment (a
    token, most likely), every header value, and env values under a secret-sounding
    name (``GITHUB_TOKEN``, ``API_KEY`` …) even when written in the file."""
    out: dict[str, str] = {}
    used: list[str] = []
    for name, raw in values.items():
        out[name] = value = expand(raw, environ, server=server, key=f"{key}.{name}", used=used)
        if key == "headers" or _SECRET_NAME.search(name):
            used.append(value)
            used.extend(value.split()[1:])  # "Bearer xyz": the credential alone too
    for secret in used:
        register_secret(secret)
    return MappingProxyType(out)


def _server(
    name: str, raw: object, *, source: str, environ: Mapping[str, str]
) -> McpServerConfig | None:
    if not isinstance(raw, Mapping):
        raise _fail(name, source, "must be an object with 'command' or 'url'")
    unknown = sorted(str(key) for key in raw if key not in _KNOWN_KEYS)
    if unknown:
        raise _fail(
            name,
            source,
            f"unknown key{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}",
            hint="A server takes command, args, env, cwd (stdio) or url, headers (HTTP), "
            "and type, trust, disabled.",
        )
    disabled = raw.get("disabled", False)
    trust = raw.get("trust", False)
    for key, flag in (("disabled", disabled), ("trust", trust)):
        if not isinstance(flag, bool):
            raise _fail(name, source, f"{key!r} must be true or false")
    if disabled:
        return None
    kind = _kind(name, raw, source)
    if kind == "stdio":
        command = raw.get("command")
        if not isinstance(command, str) or not command.strip():
            raise _fail(name, source, "'command' must be a non-empty string")
        args = raw.get("args", [])
        if not isinstance(args, list) or not all(isinstance(a, str | int | float) for a in args):
            raise _fail(name, source, "'args' must be a list of strings")
        cwd = raw.get("cwd")
        if cwd is not None and not isinstance(cwd, str):
            raise _fail(name, source, "'cwd' must be a string")
        env = _strings(raw.get("env", {}), server=name, source=source, key="env")
        return StdioServer(
            name=name,
            command=command,
            args=tuple(str(a) for a in args),
            env=_expanded(env, environ, server=name, key="env"),
            cwd=cwd,
            trust=trust,
            source=source,
        )
    url = raw.get("url")
    if not isinstance(url, str) or not re.match(r"(?i)https?://", url):
        raise _fail(name, source, "'url' must be an http:// or https:// address")
    headers = _strings(raw.get("headers", {}), server=name, source=source, key="headers")
    return HttpServer(
        name=name,
        url=url,
        headers=_expanded(headers, environ, server=name, key="headers"),
        trust=trust,
        source=source,
    )


def _kind(name: str, raw: Mapping[str, Any], source: str) -> str:
    declared = raw.get("type")
    if declared is not None:
        if declared not in _TYPES:
            raise _fail(
                name,
                source,
                f"'type' {declared!r} is not one tokentide speaks",
                hint='Use "stdio" or "http" (also "streamable-http"); SSE servers are not '
                "supported.",
            )
        kind = _TYPES[declared]
        wrong = (_HTTP_KEYS if kind == "stdio" else _STDIO_KEYS) & raw.keys()
        if wrong:
            raise _fail(name, source, f"type {declared!r} does not take {sorted(wrong)}")
        if kind == "stdio" and "command" not in raw:
            raise _fail(name, source, "a stdio server needs 'command'")
        if kind == "http" and "url" not in raw:
            raise _fail(name, source, "an HTTP server needs 'url'")
        return kind
    has_command, has_url = "command" in raw, "url" in raw
    if has_command and has_url:
        raise _fail(
            name,
            source,
            "has both 'command' and 'url'",
            hint="A server is either started by tide (command) or reached at an address (url).",
        )
    if not has_command and not has_url:
        raise _fail(
            name,
            source,
            "has neither 'command' nor 'url'",
            hint='Add "command": "..." (and "args") to start it, or "url": "http://..." to '
            "connect to it.",
        )
    stray = (_HTTP_KEYS if has_command else _STDIO_KEYS) & raw.keys()
    if stray:
        kind = "stdio (command)" if has_command else "HTTP (url)"
        raise _fail(name, source, f"a {kind} server does not take {sorted(stray)}")
    return "stdio" if has_command else "http"


def parse_servers(
    servers: Mapping[str, object], *, source: str, environ: Mapping[str, str]
) -> tuple[McpServerConfig, ...]:
    """The servers of one ``mcpServers`` object (or a config file's ``[mcp_servers]``
    table, which has the same shape), in the order written; disabled ones left out."""
    out: list[McpServerConfig] = []
    for name, raw in servers.items():
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f"{source}: an MCP server needs a non-empty name")
        server = _server(name, raw, source=source, environ=environ)
        if server is not None:
            out.append(server)
    return tuple(out)


def parse_mcp_json(
    text: str, *, source: str, environ: Mapping[str, str]
) -> tuple[McpServerConfig, ...]:
    """The servers of a ``{"mcpServers": {...}}`` document; broken JSON is an error
    giving the line and column."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{source}: not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from None
    if not isinstance(document, Mapping) or "mcpServers" not in document:
        raise ConfigError(
            f'{source}: no "mcpServers" object',
            hint='An MCP file looks like {"mcpServers": {"name": {"command": "...", '
            '"args": [...]}}} (see docs/tools.md).',
        )
    servers = document["mcpServers"]
    if not isinstance(servers, Mapping):
        raise ConfigError(f'{source}: "mcpServers" must be an object of servers by name')
    return parse_servers(servers, source=source, environ=environ)


def load_mcp_file(path: Path, *, environ: Mapping[str, str]) -> tuple[McpServerConfig, ...]:
    """The servers of an MCP JSON file (``--mcp FILE``)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"MCP file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read MCP file {path}: {exc}") from None
    return parse_mcp_json(text, source=str(path), environ=environ)
