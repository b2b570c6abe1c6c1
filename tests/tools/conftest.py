"""Fixtures of the tools tests: the SDK-written test server (servers/toolserver.py) as a
stdio subprocess or over streamable HTTP, and a watcher on the ``tokentide.tools`` log
that lets a test wait for a line the server wrote on its stderr (an event, not time)."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tokentide.tools.mcp_config import HttpServer, StdioServer
from tokentide.tools.mcp_servers import RestartPolicy

SERVER = Path(__file__).parent / "servers" / "toolserver.py"

FAST_RESTART = RestartPolicy(first_delay=0.05, max_delay=0.2, max_restarts=3, start_timeout=60)
"""Restarts without the production backoff (the delays are the code's own, not a test's
wait)."""


def stdio_server(state: Path, name: str = "calc", **kwargs: object) -> StdioServer:
    return StdioServer(
        name=name,
        command=sys.executable,
        args=(str(SERVER), "--name", name, "--state", str(state)),
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.fixture
def calc(tmp_path: Path) -> StdioServer:
    return stdio_server(tmp_path)


def alive(pid: int) -> bool:
    """Whether a process with this pid exists (a zombie counts: it was not reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


class LogWatch(logging.Handler):
    """Collects ``tokentide.tools`` records; :meth:`wait_for` returns once a message
    containing the text has been logged (records come from the stderr threads too)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(logging.DEBUG)
        self.loop = loop
        self.messages: list[str] = []
        self._changed = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        self.loop.call_soon_threadsafe(self._add, message)

    def _add(self, message: str) -> None:
        self.messages.append(message)
        self._changed.set()

    async def wait_for(self, text: str, count: int = 1) -> None:
        while sum(text in m for m in self.messages) < count:
            self._changed.clear()
            await self._changed.wait()


@pytest.fixture
async def log_watch() -> AsyncIterator[LogWatch]:
    logger = logging.getLogger("tokentide.tools")
    watch = LogWatch(asyncio.get_running_loop())
    level = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(watch)
    try:
        yield watch
    finally:
        logger.removeHandler(watch)
        logger.setLevel(level)


class HttpCalc:
    """The HTTP test server: its config, its process, and what it wrote on stderr."""

    def __init__(self, config: HttpServer, process: subprocess.Popen[str]) -> None:
        self.config = config
        self.process = process
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()

    async def wait_for(self, text: str, count: int = 1) -> None:
        def until() -> bool:
            with self._cond:
                return self._cond.wait_for(
                    lambda: sum(text in line for line in self.lines) >= count, timeout=30
                )

        assert await asyncio.to_thread(until), f"the server never wrote {text!r}: {self.lines}"


@pytest.fixture
def http_calc(tmp_path: Path) -> Iterator[HttpCalc]:
    """The test server over streamable HTTP on 127.0.0.1 (a free port it picks itself,
    announced on stdout once it listens)."""
    process = subprocess.Popen(
        [sys.executable, str(SERVER), "--http", "--name", "web", "--state", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # blocks until the server listens (or dies)
        assert line.startswith("READY "), f"the HTTP test server did not start: {line!r}"
        port = int(line.split()[1])
        yield HttpCalc(HttpServer(name="web", url=f"http://127.0.0.1:{port}/mcp"), process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def processes_mentioning(text: str) -> list[int]:
    """Pids of live processes whose command line contains ``text`` (a test's own state
    directory: its servers and anything they started)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if text in cmdline and state != "Z" and int(entry.name) != os.getpid():
            found.append(int(entry.name))
    return found
