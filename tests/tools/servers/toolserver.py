"""A small MCP server for the tools tests, written with the SDK (``MCPServer``, mcp 2.x's
name for FastMCP), run as a subprocess by the tests:

    python toolserver.py [--http] [--name NAME] [--state DIR]

Over stdio by default; ``--http`` serves streamable HTTP on 127.0.0.1 at a free port and
prints ``READY <port>`` on stdout once it listens.  It reports what happens to it on
stderr (``hang started``, ``hang cancelled``), which tokentide sends to the
``tokentide.tools`` logger: the tests wait for those lines, never for time.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from pathlib import Path

import anyio
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.context import Context
from mcp.server.mcpserver.exceptions import ToolError


def say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def build(name: str, state: Path) -> MCPServer:
    server = MCPServer(name, log_level="WARNING")

    @server.tool()
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    @server.tool()
    def pid() -> int:
        """This server's process id."""
        return os.getpid()

    @server.tool()
    async def hang(seconds: float = 3600.0) -> str:
        """Sleep, far past any deadline; says on stderr when it starts and is cancelled."""
        say("hang started")
        try:
            await anyio.sleep(seconds)
        except anyio.get_cancelled_exc_class():
            say("hang cancelled")
            raise
        return "woke up"

    @server.tool()
    def fail(reason: str) -> str:
        """Always fails, with the reason given (an isError result)."""
        raise ToolError(f"failed on purpose: {reason}")

    @server.tool()
    def crash_once() -> str:
        """The first call (per state directory) kills this server; later ones answer."""
        marker = state / "crashed"
        if not marker.exists():
            marker.write_text(str(os.getpid()))
            say("crashing on purpose")
            os._exit(3)
        return "survived"

    @server.tool()
    def shout() -> str:
        """Text with escape sequences in it (a screen clear, an OSC 52 clipboard write)."""
        return "\x1b[2Jloud\x1b]52;c;aGk=\x07"

    @server.tool()
    async def grow(ctx: Context) -> str:
        """Adds a tool named 'extra' and tells the client its tools changed."""

        def extra() -> str:
            """Added while running."""
            return "extra"

        server.add_tool(extra, name="extra")
        await ctx.session.send_tool_list_changed()
        return "grown"

    @server.tool()
    def huge(size: int = 200_000) -> str:
        """A very long result."""
        return "x" * size

    return server


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--http", action="store_true")
    parser.add_argument("--name", default="calc")
    parser.add_argument("--state", default=".")
    args = parser.parse_args()
    server = build(args.name, Path(args.state))
    say(f"{args.name} starting")
    if not args.http:
        server.run("stdio")
        return
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    app = server.streamable_http_app(host="127.0.0.1")
    config = uvicorn.Config(app, log_level="warning", lifespan="on")
    print(f"READY {sock.getsockname()[1]}", flush=True)
    anyio.run(uvicorn.Server(config).serve, [sock])


if __name__ == "__main__":
    main()
