"""One configured MCP server's life: started in the background, watched, restarted
after a crash, stopped for good by :meth:`McpServer.aclose`.

Each server has one supervisor task (an asyncio task) that owns everything of the
connection: the transport (:func:`mcp.client.stdio.stdio_client` or
:func:`mcp.client.streamable_http.streamable_http_client`), the
:class:`mcp.ClientSession`, and the anyio task group in between.  The SDK's contexts
must be left by the task that entered them, so only the supervisor opens and closes
them; callers use the running session and never own it.

* **Start**: handshake (``initialize``) and ``tools/list`` within ``start_timeout``;
  then ``ready`` and the tools are offered; a ``notifications/tools/list_changed`` from
  the server has the list read again.  The connection itself is
  :mod:`tokentide.tools.mcp_connect`.
* **Crash**: the server's stdout ends (the process died) or a call fails at the
  transport: the connection is torn down, the state becomes ``restarting`` and a new
  start follows after a backoff (0.5 s, 1 s, 2 s … at most ``max_restarts`` times in a
  row; a server that stayed up ``stable_after`` seconds starts counting again).  A call
  in flight gets an error result; it is not retried (a tool may have side effects).
* **Stop**: :meth:`aclose` cancels the supervisor's cancel scope; the SDK's stdio
  shutdown (close stdin, wait 2 s, SIGTERM to the process group, 2 s, SIGKILL) runs
  shielded, so no server process outlives it.
* **Calls** (:meth:`call`) run in the caller's task with a deadline; a deadline that
  passes, or a caller cancelled (Esc), cancels the request, and the SDK then sends MCP's
  ``notifications/cancelled`` for it, so the server can stop the work.

Nothing of the SDK is imported until :meth:`start`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final

from tokentide.backends.tool_spec import ToolResult, ToolSpec
from tokentide.errors import excerpt
from tokentide.redact import redact
from tokentide.sanitize import sanitize
from tokentide.tools.mcp_config import McpServerConfig, StdioServer
from tokentide.tools.mcp_connect import (
    Connection,
    describe_failure,
    is_transport_failure,
    list_tools,
    open_connection,
)
from tokentide.tools.mcp_results import result_text
from tokentide.tools.mcp_stderr import StderrPipe
from tokentide.tools.status import Changes, SourceState, SourceStatus

if TYPE_CHECKING:
    import anyio
    from mcp import ClientSession

__all__ = ["DEFAULT_TOOL_TIMEOUT", "McpServer", "RestartPolicy"]

logger = logging.getLogger("tokentide.tools")

DEFAULT_TOOL_TIMEOUT: Final = 60.0
_CONNECTION_CLOSED: Final = -32000  # mcp_types.CONNECTION_CLOSED, without importing it


class RestartPolicy:
    """How a crashed server is started again: ``max_restarts`` in a row, waiting
    ``first_delay`` doubled each time up to ``max_delay``."""

    def __init__(
        self,
        *,
        max_restarts: int = 3,
        first_delay: float = 0.5,
        max_delay: float = 10.0,
        stable_after: float = 60.0,
        start_timeout: float = 30.0,
    ) -> None:
        self.max_restarts = max_restarts
        self.first_delay = first_delay
        self.max_delay = max_delay
        self.stable_after = stable_after
        self.start_timeout = start_timeout

    def delay(self, attempt: int) -> float:
        return float(min(self.first_delay * 2 ** max(attempt - 1, 0), self.max_delay))


class _Lost(Exception):
    """The connection ended under a running session (the server exited)."""


def _leaf(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def _clean(text: str) -> str:
    return excerpt(redact(sanitize(text)))


class McpServer:
    """A configured MCP server and its current connection (see the module docstring)."""

    def __init__(
        self,
        config: McpServerConfig,
        *,
        policy: RestartPolicy | None = None,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.config = config
        self.name = config.name
        self.policy = policy or RestartPolicy()
        self.changes = Changes()
        if on_change is not None:
            self.changes.subscribe(on_change)
        self._state: SourceState = "starting"
        self._message = ""
        self._tools: tuple[ToolSpec, ...] = ()
        self._restarts = 0
        self._session: ClientSession | None = None
        self._lost: anyio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._scope: anyio.CancelScope | None = None
        self._closing = False
        self._stderr: StderrPipe | None = None

    # -- what a view reads -------------------------------------------------------------

    @property
    def state(self) -> SourceState:
        return self._state

    @property
    def tools(self) -> tuple[ToolSpec, ...]:
        """Its tools while ready, under their own names; empty otherwise."""
        return self._tools if self._state == "ready" else ()

    def status(self) -> SourceStatus:
        stdio = isinstance(self.config, StdioServer)
        return SourceStatus(
            name=self.name,
            kind="mcp-stdio" if stdio else "mcp-http",
            state=self._state,
            where=self.config.where,
            tools=self.tools,
            message=self._message,
            trust=self.config.trust,
            restarts=self._restarts,
        )

    def _set(self, state: SourceState, message: str = "") -> None:
        self._state, self._message = state, message
        if state in ("failed", "restarting") and message:
            logger.warning("MCP server %r %s: %s", self.name, state, message)
        else:
            logger.debug("MCP server %r %s", self.name, state)
        self.changes.notify()

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        """Start in the background (idempotent); the tools appear when it is ready."""
        if self._task is None and not self._closing:
            _quiet_loggers()
            self._task = asyncio.get_running_loop().create_task(
                self._supervise(), name=f"tide-mcp-{self.name}"
            )

    async def aclose(self) -> None:
        """Stop the server for good; returns once its process is gone."""
        self._closing = True
        task = self._task
        if task is None:
            if self._state != "stopped":
                self._set("stopped")
            return
        if self._scope is not None:
            self._scope.cancel()
        elif not task.done():
            task.cancel()  # not yet inside its scope: nothing of the SDK entered
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            if not task.done():
                # Our caller is cancelled, not the supervisor: let the stop finish (it is
                # bounded: the SDK kills the process within ~5 s), then obey.
                await asyncio.wait({task})
                raise
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise
        if self._state != "stopped":  # it had ended (failed) before the close
            self._set("stopped")

    async def _supervise(self) -> None:
        attempt = 0
        try:
            # The SDK takes about a second to import (pydantic models): in a worker
            # thread, so the app's event loop keeps painting while the servers start.
            try:
                await asyncio.to_thread(_import_sdk)
            except ImportError as exc:
                self._set(
                    "failed",
                    f"the MCP SDK is not installed ({exc.name or exc}): "
                    "pip install 'tokentide[tools]'",
                )
                return
            import anyio

            with anyio.CancelScope() as scope:
                self._scope = scope
                if self._closing:
                    scope.cancel()
                while True:
                    started = time.monotonic()
                    message = await self._run_once()
                    if self._closing:
                        break
                    if time.monotonic() - started >= self.policy.stable_after:
                        attempt = 0
                    attempt += 1
                    if attempt > self.policy.max_restarts:
                        count = self.policy.max_restarts
                        more = f" (gave up after {count} restart{'s' if count > 1 else ''})"
                        self._set("failed", message + (more if self.policy.max_restarts else ""))
                        return
                    self._restarts += 1
                    self._set("restarting", message)
                    await anyio.sleep(self.policy.delay(attempt))
        finally:
            self._session, self._scope = None, None
            if self._closing:
                self._state, self._message = "stopped", ""
            self.changes.notify()

    async def _run_once(self) -> str:
        """One connection, from start to its end; returns why it ended."""
        import anyio
        import anyio.to_thread

        self._stderr = None
        try:
            async with contextlib.AsyncExitStack() as stack:
                connection = await open_connection(
                    self.config, stack, stderr=self._new_stderr, version=_version()
                )
                session = connection.session
                with anyio.fail_after(self.policy.start_timeout):
                    await session.initialize()
                    tools = await list_tools(session)
                self._tools, self._session, self._lost = tools, session, connection.lost
                self._set("ready")
                connection.group.start_soon(self._follow_tools, connection)
                await connection.lost.wait()
                raise _Lost
        except _Lost:
            message = "the server exited"
        except TimeoutError:
            message = f"it did not answer the MCP handshake within {self.policy.start_timeout:g} s"
        except Exception as exc:
            message = describe_failure(self.config, _leaf(exc))
        finally:
            self._session, self._lost, self._tools = None, None, ()
        stderr = self._current_stderr()  # set by open_connection, through _new_stderr
        if stderr is not None:
            # Its last lines, read to the end (bounded: a grandchild may hold the pipe).
            await anyio.to_thread.run_sync(stderr.wait_closed, 1.0)
        return self._exited(message)

    def _current_stderr(self) -> StderrPipe | None:
        return self._stderr

    def _new_stderr(self) -> StderrPipe:
        self._stderr = StderrPipe(self.name, logger)
        return self._stderr

    async def _follow_tools(self, connection: Connection) -> None:
        """Re-read the tool list whenever the server says it changed."""
        import anyio

        while True:
            await connection.tools_changed.wait()
            connection.tools_changed.clear()
            try:
                with anyio.fail_after(self.policy.start_timeout):
                    tools = await list_tools(connection.session)
            except Exception as exc:
                logger.warning("MCP server %r: re-reading its tools failed: %r", self.name, exc)
                continue
            self._tools = tools
            logger.debug("MCP server %r: tools now %s", self.name, [t.name for t in tools])
            self.changes.notify()

    def _exited(self, message: str) -> str:
        stderr = self._stderr
        if stderr is not None:
            last = stderr.last(1)
            if last:
                message = f"{message}; its last words: {last[0]}"
        return _clean(message)

    # -- calls -------------------------------------------------------------------------

    async def _ready_session(self) -> ClientSession:
        while True:
            lost = self._lost
            # A lost connection the supervisor has not noticed yet: wait for its restart.
            alive = lost is not None and not lost.is_set()
            if self._state == "ready" and self._session is not None and alive:
                return self._session
            if self._state in ("failed", "stopped") or self._task is None:
                why = f": {self._message}" if self._message else ""
                raise _Unavailable(f"MCP server {self.name!r} is {self._state}{why}")
            await self.changes.wait()

    async def call(
        self,
        tool: str,
        arguments: Mapping[str, Any],
        *,
        call_id: str | None,
        as_name: str | None = None,
        timeout: float = DEFAULT_TOOL_TIMEOUT,
    ) -> ToolResult:
        """Run ``tool`` on this server; every failure is an error result, never raised
        (cancellation excepted: it propagates, after the SDK told the server)."""
        name = as_name or tool

        def error(text: str) -> ToolResult:
            return ToolResult(call_id=call_id, name=name, content=_clean(text), is_error=True)

        session: ClientSession | None = None
        try:
            async with asyncio.timeout(timeout):
                session = await self._ready_session()
                result = await session.call_tool(tool, dict(arguments))
        except TimeoutError:
            if session is None:
                return error(f"MCP server {self.name!r} was not ready within {timeout:g} s")
            return error(f"{tool} did not finish within {timeout:g} s; the call was cancelled")
        except _Unavailable as exc:
            return error(str(exc))
        except Exception as exc:
            leaf = _leaf(exc)
            code = getattr(leaf, "code", None)
            if code == _CONNECTION_CLOSED or is_transport_failure(leaf):
                self._connection_broke()
                return error(
                    f"MCP server {self.name!r} stopped during the call to {tool} "
                    "(it is being restarted)"
                )
            if type(leaf).__name__ == "MCPError":
                return error(f"MCP server {self.name!r} refused the call to {tool}: {leaf}")
            return error(
                f"calling {tool} on MCP server {self.name!r} failed: {type(leaf).__name__}: {leaf}"
            )
        # The tool's own words, error or not, go to the model as they came (cut if huge);
        # like all tool output they are sanitised where they are shown.
        text = result_text(result)
        if result.is_error:
            text = text or f"{tool} reported an error and said nothing more"
        return ToolResult(call_id=call_id, name=name, content=text, is_error=result.is_error)

    def _connection_broke(self) -> None:
        if self._lost is not None:
            self._lost.set()


class _Unavailable(Exception):
    pass


_SDK_MODULES: Final = (
    "anyio.to_thread",
    "httpx2",
    "mcp",
    "mcp.client.stdio",
    "mcp.client.streamable_http",
    "mcp.shared.message",
    "mcp_types",
)


def _import_sdk() -> None:
    import importlib

    for name in _SDK_MODULES:
        importlib.import_module(name)


def _quiet_loggers() -> None:
    """No record of ours or the SDK's reaches the terminal through logging's last-resort
    handler (which prints warnings to stderr when nothing is configured, over the chat
    screen); with ``--debug`` they still propagate to the debug log."""
    for name in ("tokentide.tools", "mcp"):
        target = logging.getLogger(name)
        if not any(isinstance(h, logging.NullHandler) for h in target.handlers):
            target.addHandler(logging.NullHandler())


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("tokentide")
    except PackageNotFoundError:
        return "0"
