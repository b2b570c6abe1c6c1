"""One connection to an MCP server through the SDK: the transport, a relay that notices
the end of the server's stream, and the :class:`mcp.ClientSession` over it, all entered
on an exit stack the supervisor (:class:`tokentide.tools.mcp_servers.McpServer`) owns.

Also what a person reads when it fails (:func:`describe_failure`), and what counts as
the connection breaking under a call (:func:`is_transport_failure`).

Imports the SDK inside its functions only: importing this module costs nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from tokentide.backends.tool_spec import ToolSpec
from tokentide.tools.mcp_config import HttpServer, McpServerConfig, StdioServer
from tokentide.tools.mcp_results import tool_spec
from tokentide.tools.mcp_stderr import StderrPipe

if TYPE_CHECKING:
    import anyio
    from mcp import ClientSession

__all__ = [
    "Connection",
    "describe_failure",
    "is_transport_failure",
    "list_tools",
    "open_connection",
]

logger = logging.getLogger("tokentide.tools")

_MAX_LIST_PAGES: Final = 100


@dataclass(frozen=True, slots=True)
class Connection:
    session: ClientSession
    lost: anyio.Event
    """Set when the server's stream ended (the process exited, the HTTP stream broke)."""
    tools_changed: asyncio.Event
    """Set when the server sent ``notifications/tools/list_changed``."""
    group: anyio.abc.TaskGroup
    """The connection's task group, for work that must end with it."""


async def open_connection(
    config: McpServerConfig,
    stack: contextlib.AsyncExitStack,
    *,
    stderr: Callable[[], StderrPipe],
    version: str,
) -> Connection:
    """Enter the transport, the relay and the session on ``stack`` (no handshake yet).
    ``stderr`` makes the pipe for a stdio server's stderr."""
    import anyio
    from mcp import ClientSession
    from mcp.shared.message import SessionMessage
    from mcp_types import Implementation, LoggingMessageNotificationParams

    if isinstance(config, StdioServer):
        from mcp.client.stdio import StdioServerParameters, stdio_client

        params = StdioServerParameters(
            command=config.command,
            args=list(config.args),
            env=dict(config.env) or None,
            cwd=config.cwd,
        )
        pipe = stderr()
        try:
            read, write = await stack.enter_async_context(stdio_client(params, errlog=pipe.writer))
        finally:
            pipe.spawned()
    else:
        import httpx2
        from mcp.client.streamable_http import streamable_http_client

        client = httpx2.AsyncClient(
            headers=dict(config.headers), timeout=httpx2.Timeout(30.0, read=300.0)
        )
        await stack.enter_async_context(client)
        read, write = await stack.enter_async_context(
            streamable_http_client(config.url, http_client=client)
        )

    # The session reads through a relay, so the end of the transport's stream (the
    # server died) wakes the supervisor as well as failing the calls in flight.
    lost = anyio.Event()
    relay_send, relay_receive = anyio.create_memory_object_stream[SessionMessage | Exception](0)

    async def relay() -> None:
        try:
            async with relay_send:
                async for item in read:
                    await relay_send.send(item)
        except (anyio.ClosedResourceError, anyio.BrokenResourceError, anyio.EndOfStream):
            pass
        finally:
            lost.set()

    tools_changed = asyncio.Event()

    async def on_message(message: Any) -> None:
        if getattr(message, "method", None) == "notifications/tools/list_changed":
            tools_changed.set()

    async def on_log(params: LoggingMessageNotificationParams) -> None:
        logger.debug("MCP server %r log (%s): %s", config.name, params.level, params.data)

    group = await stack.enter_async_context(anyio.create_task_group())
    stack.callback(group.cancel_scope.cancel)  # runs before the group is left
    group.start_soon(relay)
    stack.push_async_callback(relay_receive.aclose)
    session = await stack.enter_async_context(
        ClientSession(
            relay_receive,
            write,
            client_info=Implementation(name="tokentide", version=version),
            message_handler=on_message,
            logging_callback=on_log,
        )
    )
    return Connection(session=session, lost=lost, tools_changed=tools_changed, group=group)


async def list_tools(session: ClientSession) -> tuple[ToolSpec, ...]:
    """Every page of ``tools/list`` (at most 100: a paginator that never ends is cut)."""
    from mcp_types import PaginatedRequestParams

    tools: list[ToolSpec] = []
    cursor: str | None = None
    for _ in range(_MAX_LIST_PAGES):
        params = None if cursor is None else PaginatedRequestParams(cursor=cursor)
        page = await session.list_tools(params=params)
        tools.extend(tool_spec(tool) for tool in page.tools)
        cursor = page.next_cursor
        if not cursor:
            break
    return tuple(tools)


def describe_failure(config: McpServerConfig, exc: BaseException) -> str:
    """Why a start failed, for a person (not yet sanitised)."""
    if isinstance(config, StdioServer):
        if isinstance(exc, FileNotFoundError):
            return f"cannot start {config.command!r}: no such program or file"
        if isinstance(exc, PermissionError):
            return f"cannot start {config.command!r}: permission denied"
        if isinstance(exc, OSError):
            return f"cannot start {config.command!r}: {exc.strerror or exc}"
    name = type(exc).__name__
    if isinstance(config, HttpServer) and (is_transport_failure(exc) or isinstance(exc, OSError)):
        return f"cannot connect to {config.url}: {exc or name}"
    if name == "MCPError":
        return f"the server answered with an error: {exc}"
    return f"{name}: {exc}" if str(exc) else name


def is_transport_failure(exc: BaseException) -> bool:
    """Whether ``exc`` means the connection itself broke (not the call)."""
    import anyio

    if isinstance(exc, anyio.ClosedResourceError | anyio.BrokenResourceError | OSError):
        return True
    return any(cls.__name__ == "TransportError" for cls in type(exc).__mro__)
