"""``tide ask`` asks before a tool runs when it has a terminal: the question goes to the
controlling terminal (``/dev/tty``), ``y`` runs the call, ctrl+c at the question stops
``tide ask`` at once (exit 130).  A real process whose controlling terminal is a pty."""

from __future__ import annotations

import os
import pty
import select
import sys
import time
from pathlib import Path

import pytest

from tests.servers.llm_server import LLMServer

FUNCTIONS = '''
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b
'''

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs a pty")


class Terminal:
    """``python -m tokentide ARGS`` in a new session whose controlling terminal is a pty."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        pid, fd = pty.fork()
        if pid == 0:  # the child: a session leader with the pty as its terminal
            os.execve(sys.executable, [sys.executable, "-m", "tokentide", *args], env)
        self.pid, self.fd = pid, fd
        self.seen = b""

    def read_until(self, text: bytes, timeout: float = 60) -> bytes:
        deadline = time.monotonic() + timeout
        while text not in self.seen:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"never saw {text!r}; the terminal got {self.seen!r}")
            ready, _, _ = select.select([self.fd], [], [], left)
            if ready:
                try:
                    chunk = os.read(self.fd, 65536)
                except OSError:  # EIO: the child closed the terminal
                    chunk = b""
                if not chunk:
                    raise AssertionError(f"ended before {text!r}; it said {self.seen!r}")
                self.seen += chunk
        return self.seen

    def send(self, data: bytes) -> None:
        os.write(self.fd, data)

    def wait(self, timeout: float = 30) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                return os.waitstatus_to_exitcode(status)
            ready, _, _ = select.select([self.fd], [], [], 0.05)  # drain what it writes
            if ready:
                try:
                    self.seen += os.read(self.fd, 65536)
                except OSError:
                    pass
        os.kill(self.pid, 9)
        raise AssertionError(f"tide ask did not exit; the terminal got {self.seen!r}")


def ask(server: LLMServer, tmp_path: Path, env: dict[str, str], tag: str) -> Terminal:
    functions = tmp_path / "calc.py"
    functions.write_text(FUNCTIONS)
    url = server.url(tag=tag, tool="add", tool_once=1, echo=1, tool_args='{"a": 2, "b": 3}')
    args = ["ask", "--api", "openai", "--url", url, "--functions", str(functions), "go"]
    return Terminal(args, env)


def test_y_at_the_question_runs_the_call(
    server: LLMServer, tmp_path: Path, env: dict[str, str]
) -> None:
    term = ask(server, tmp_path, env, "tty-yes")
    term.read_until(b"Run it?")
    assert b"calc.add(a=2, b=3)" in term.seen and b"functions file 'calc'" in term.seen
    term.send(b"y\r")
    assert term.wait() == 0, term.seen
    assert b"\xe2\x96\xb8 calc.add(a=2, b=3) \xe2\x86\x92 5" in term.seen  # ▸ ... → 5


def test_ctrl_c_at_the_question_stops_at_once(
    server: LLMServer, tmp_path: Path, env: dict[str, str]
) -> None:
    term = ask(server, tmp_path, env, "tty-stop")
    term.read_until(b"Run it?")
    term.send(b"\x03")
    assert term.wait(timeout=15) == 130, term.seen
    assert b"stopped" in term.seen
    assert len([r for r in server.records if r.tag == "tty-stop" and r.body]) == 1
