"""The toolbox: every source of tools of a conversation (MCP servers, functions files)
behind one surface for the chat session, ``tide ask`` and the "Tools" view.

* :meth:`Toolbox.specs` — what to offer the model now: the tools of every source that
  is ready.  Names are unique: a name two sources share is offered qualified as
  ``SOURCE__TOOL`` for each of them (``files__search``, ``web__search``); a name with
  characters the APIs refuse (OpenAI and Anthropic take ``[A-Za-z0-9_-]``, at most 64)
  has them replaced by ``_``.
* :meth:`source_of` — where an offered tool comes from (the approval dialog and rules).
* :meth:`call` / :meth:`call_many` — run calls; every failure (unknown tool, arguments
  that are not a JSON object, a tool error, a deadline, a crashed server) is an error
  :class:`~tokentide.backends.tool_spec.ToolResult` the model reads; nothing is raised
  but cancellation.  Approval is not checked here: that is
  :func:`tokentide.tools.approval.decide`, before the call.
* :meth:`snapshot` and :attr:`changes` — the sources, their states and tools, and a
  signal on every change, for the view.

MCP servers start in the background (:meth:`start`); their tools appear when ready.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Protocol

from tokentide.backends.events import ToolCallRequested
from tokentide.backends.tool_spec import ToolResult, ToolSpec
from tokentide.errors import ConfigError, excerpt
from tokentide.sanitize import sanitize
from tokentide.tools.functions import FunctionsFile, load_functions
from tokentide.tools.mcp_config import McpServerConfig, load_mcp_file
from tokentide.tools.mcp_servers import DEFAULT_TOOL_TIMEOUT, McpServer, RestartPolicy
from tokentide.tools.status import Changes, SourceStatus, ToolSource

__all__ = ["Toolbox", "build_toolbox", "offered_name"]

_MAX_NAME: Final = 64
_UNSAFE: Final = re.compile(r"[^A-Za-z0-9_-]")


def offered_name(name: str) -> str:
    """``name`` as the model APIs accept it."""
    return (_UNSAFE.sub("_", name) or "_")[:_MAX_NAME]


class _Source(Protocol):
    name: str

    @property
    def tools(self) -> tuple[ToolSpec, ...]: ...

    def status(self) -> SourceStatus: ...

    async def call(
        self,
        tool: str,
        arguments: Mapping[str, Any],
        *,
        call_id: str | None,
        as_name: str | None = None,
        timeout: float,
    ) -> ToolResult: ...


@dataclass(frozen=True, slots=True)
class _Entry:
    source: _Source
    spec: ToolSpec
    """Under the offered name."""
    original: str


class Toolbox:
    """Every tool source of a conversation (see the module docstring)."""

    def __init__(
        self,
        servers: Sequence[McpServerConfig] = (),
        functions: Sequence[FunctionsFile] = (),
        *,
        timeout: float = DEFAULT_TOOL_TIMEOUT,
        restart: RestartPolicy | None = None,
    ) -> None:
        self.timeout = timeout
        """The deadline of each call (``tool_timeout``), unless a call gives its own."""
        self.changes = Changes()
        seen: dict[str, str] = {}
        for config in servers:
            if config.name in seen:
                raise ConfigError(
                    f"MCP server {config.name!r} is defined twice ({seen[config.name]} and "
                    f"{config.source or 'the config'})",
                    hint="Rename one of them: names must be unique.",
                )
            seen[config.name] = config.source or "the config"
        self._servers = tuple(
            McpServer(config, policy=restart, on_change=self.changes.notify) for config in servers
        )
        self._functions = tuple(functions)
        self._sources: tuple[_Source, ...] = (*self._servers, *self._functions)
        self._table_version = -1
        self._table: dict[str, _Entry] = {}
        self._closed = False

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        """Start every MCP server in the background (call it on the running loop, after
        the first frame: nothing here waits)."""
        if self._closed:
            return
        for server in self._servers:
            server.start()

    async def settled(self) -> None:
        """Until no server is starting or restarting (each is ready, failed or stopped)."""
        while any(s.state in ("starting", "restarting") for s in self._servers):
            await self.changes.wait()

    async def aclose(self) -> None:
        """Stop every MCP server; returns once their processes are gone."""
        self._closed = True
        await asyncio.gather(*(server.aclose() for server in self._servers))

    async def __aenter__(self) -> Toolbox:
        self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- what is offered ---------------------------------------------------------------

    def _entries(self) -> dict[str, _Entry]:
        if self._table_version == self.changes.version:
            return self._table
        pairs = [(source, spec) for source in self._sources for spec in source.tools]
        counts: dict[str, int] = {}
        for _, spec in pairs:
            counts[offered_name(spec.name)] = counts.get(offered_name(spec.name), 0) + 1
        table: dict[str, _Entry] = {}
        for source, spec in pairs:
            name = offered_name(spec.name)
            if counts[name] > 1:
                name = offered_name(f"{source.name}__{spec.name}")
            unique, suffix = name, 2
            while unique in table:
                unique, suffix = f"{name[: _MAX_NAME - 4]}_{suffix}", suffix + 1
            table[unique] = _Entry(
                source=source,
                spec=ToolSpec(
                    name=unique, description=spec.description, parameters=spec.parameters
                ),
                original=spec.name,
            )
        self._table, self._table_version = table, self.changes.version
        return table

    def specs(self) -> tuple[ToolSpec, ...]:
        """The tools to offer the model now, names unique."""
        return tuple(entry.spec for entry in self._entries().values())

    def source_of(self, name: str) -> ToolSource | None:
        """Where the offered tool ``name`` comes from; ``None`` if nothing offers it."""
        entry = self._entries().get(name)
        if entry is None:
            return None
        status = entry.source.status()
        return ToolSource(
            tool=name,
            original=entry.original,
            source=entry.source.name,
            kind=status.kind,
            where=status.where,
            trust=status.trust,
        )

    def snapshot(self) -> tuple[SourceStatus, ...]:
        """Every source, its state and tools, in the order configured."""
        return tuple(source.status() for source in self._sources)

    # -- calls -------------------------------------------------------------------------

    async def call(self, call: ToolCallRequested, *, timeout: float | None = None) -> ToolResult:
        """Run one call (already approved); the result answers ``call.id``."""

        def error(text: str) -> ToolResult:
            return ToolResult(
                call_id=call.id, name=call.name, content=sanitize(text), is_error=True
            )

        entries = self._entries()
        entry = entries.get(call.name)
        if entry is None:
            names = ", ".join(sorted(entries)) or "none"
            return error(
                f"there is no tool named {excerpt(sanitize(call.name), 80)!r}; the tools are: {names}"
            )
        arguments = _arguments(call.arguments)
        if isinstance(arguments, str):
            return error(f"{call.name}: {arguments}")
        try:
            return await entry.source.call(
                entry.original,
                arguments,
                call_id=call.id,
                as_name=call.name,
                timeout=self.timeout if timeout is None else timeout,
            )
        except Exception as exc:  # a source's own bug: still an answer for the model
            return error(f"{call.name} failed: {type(exc).__name__}: {excerpt(str(exc))}")

    async def call_many(
        self, calls: Sequence[ToolCallRequested], *, timeout: float | None = None
    ) -> list[ToolResult]:
        """Run several calls at once, each with its own deadline; results in call order.
        Cancelling the caller cancels every call still running."""
        return list(await asyncio.gather(*(self.call(c, timeout=timeout) for c in calls)))


def _arguments(text: str) -> dict[str, Any] | str:
    """The arguments object, or why it is not one (for the model)."""
    if not text.strip():
        return {}  # some models send "" for a call without arguments
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        return f"the arguments are not valid JSON ({exc.msg} at character {exc.pos})"
    if not isinstance(value, dict):
        return (
            f"the arguments must be a JSON object, got {type(value).__name__}: {excerpt(text, 80)}"
        )
    return value


def build_toolbox(
    *,
    mcp_files: Sequence[Path] = (),
    servers: Sequence[McpServerConfig] = (),
    function_files: Sequence[Path] = (),
    environ: Mapping[str, str] | None = None,
    timeout: float = DEFAULT_TOOL_TIMEOUT,
    restart: RestartPolicy | None = None,
) -> Toolbox:
    """A toolbox from ``--mcp`` files, servers from the config (``[mcp_servers.NAME]``,
    parsed with :func:`~tokentide.tools.mcp_config.parse_servers`) and ``--functions``
    files.  Reads and imports the files now (errors are ``ConfigError``); starts nothing."""
    env = os.environ if environ is None else environ
    configs: list[McpServerConfig] = list(servers)
    for path in mcp_files:
        configs.extend(load_mcp_file(path, environ=env))
    functions = [load_functions(path) for path in function_files]
    return Toolbox(configs, functions, timeout=timeout, restart=restart)
