"""Terminal safety end to end (issue 7, reliability.md §1 T1–T4): hostile model text and
hostile server error text reach a *real* terminal without any of their sequences.

* pty: ``python -m tokentide ask`` with stdout AND stderr on a pseudo-terminal, against
  the loopback server streaming ``combined_stream()`` (one run), each ``MESSAGE_END``
  payload (one run each), and an in-band error whose message carries payloads.
* tmux: ``python -m tokentide chat`` on the same hostile text; ``pipe-pane`` captures the
  raw bytes the app writes; the counts of every FORBIDDEN signature must not exceed a
  baseline run whose answer is the sanitised (benign) text, and the text is on screen.
"""

from __future__ import annotations

import os
import pty
import re
import select
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.hostile_payloads import FORBIDDEN, MESSAGE_END, PAYLOADS, combined_stream
from tests.servers.llm_server import LLMServer
from tokentide.sanitize import sanitize

ROOT = Path(__file__).resolve().parents[2]


def clean_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TIDE_", "TMUX", "OPENAI"))}
    env.update(
        TIDE_CONFIG=str(tmp_path / "config.toml"),
        TIDE_DATA_DIR=str(tmp_path / "data"),
        TERM="xterm-256color",
        PYTHONPATH=str(ROOT / "src"),
    )
    return env


def run_on_pty(args: list[str], env: dict[str, str], timeout: float = 20.0) -> tuple[int, bytes]:
    """Run ``args`` with stdout and stderr on a pty; return (exit code, bytes seen)."""
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, env=env, close_fds=True
        )
    finally:
        os.close(slave)
    out = bytearray()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: the child closed its end
                    break
                if not data:
                    break
                out += data
            elif proc.poll() is not None:
                break
        code = proc.wait(timeout=max(0.1, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    return code, bytes(out)


def ask(server: LLMServer, **knobs: object) -> list[str]:
    return [
        sys.executable, "-m", "tokentide", "ask", "hello",
        "--api", "openai", "--url", server.url(**knobs) + "/v1", "--model", "m",
    ]  # fmt: skip


def assert_no_forbidden(data: bytes) -> None:
    found = [sig for sig in FORBIDDEN if sig in data]
    assert not found, f"{found} reached the terminal"


@pytest.mark.timeout(60)
def test_tide_ask_on_a_pty_combined_stream(server: LLMServer, tmp_path: Path) -> None:
    text, visible = combined_stream()
    code, data = run_on_pty(ask(server, text=text), clean_env(tmp_path))
    assert code == 0, data[-500:]
    assert_no_forbidden(data)
    shown = data.replace(b"\r\n", b"\n").decode("utf-8")
    assert "\n".join(visible) in shown


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", sorted(MESSAGE_END))
def test_tide_ask_on_a_pty_message_end_payload(
    server: LLMServer, tmp_path: Path, name: str
) -> None:
    payload = next(p for p in PAYLOADS if p.name == name)
    code, data = run_on_pty(ask(server, text=payload.payload), clean_env(tmp_path))
    assert code == 0, data[-500:]
    assert_no_forbidden(data)
    if payload.visible.strip():
        assert payload.visible.strip() in data.replace(b"\r\n", b"\n").decode("utf-8")


@pytest.mark.timeout(60)
def test_server_error_message_on_a_pty(server: LLMServer, tmp_path: Path) -> None:
    text, _ = combined_stream()
    hostile = text.replace("\n", " ")[:1500]
    code, data = run_on_pty(ask(server, error_at=2, error_message=hostile), clean_env(tmp_path))
    assert code == 4
    assert_no_forbidden(data)
    shown = data.replace(b"\r\n", b"\n").decode("utf-8")
    assert "The quick\n" in shown and "error:" in shown
    assert "clip-bel after" in shown  # the first payload's visible text, from the message
    assert "Traceback" not in shown


# -- tmux: tide chat -----------------------------------------------------------------------

PLAIN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ]{4,}$")


class Tmux:
    def __init__(self, env: dict[str, str]) -> None:
        self.socket = f"tide-hard-{uuid.uuid4().hex[:10]}"
        self.env = env

    def run(self, *args: str) -> str:
        return subprocess.run(
            ["tmux", "-L", self.socket, *args],
            capture_output=True, text=True, env=self.env, check=True, timeout=10,
        ).stdout  # fmt: skip

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", "0")

    def wait_for(self, condition: Callable[[str], bool], timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if condition(screen):
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"screen never matched; last capture:\n{screen}")
            time.sleep(0.1)  # polling a screen: there is no event to await

    def wait_exit(self, timeout: float = 10.0) -> None:
        """Wait until the app has exited (its tmux session ends with it)."""
        deadline = time.monotonic() + timeout
        while (
            subprocess.run(
                ["tmux", "-L", self.socket, "has-session"],
                capture_output=True,
                env=self.env,
                check=False,
            ).returncode
            == 0
        ):
            if time.monotonic() > deadline:
                raise AssertionError("the app did not exit")
            time.sleep(0.05)

    def kill(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True, check=False)


def chat_run(server: LLMServer, tmp_path: Path, answer: str, tag: str) -> tuple[bytes, str]:
    """Run ``tide chat`` whose answer is ``answer``; return (raw bytes, final screen)."""
    home = tmp_path / tag
    home.mkdir()
    env = clean_env(home)
    url = server.url(text=answer, tag=tag) + "/v1"
    Path(env["TIDE_CONFIG"]).write_text(
        f'default = "loop"\n\n[profiles.loop]\napi = "openai"\nurl = "{url}"\nmodel = "m"\n'
    )
    capture = home / "raw.bin"
    capture.touch()
    tmux = Tmux(env)
    try:
        tmux.run("-f", "/dev/null", "new-session", "-d", "-x", "120", "-y", "40",
                 f"sleep 0.5; exec {sys.executable} -m tokentide chat")  # fmt: skip
        tmux.run("pipe-pane", "-o", "-t", "0", f"cat >> {capture}")
        tmux.wait_for(lambda s: "Send" in s and "loop" in s)
        tmux.run("send-keys", "-t", "0", "Tell me", "Enter")
        last = [v for v in sanitize(answer).split("\n\n") if PLAIN.match(v)][-1]
        tmux.wait_for(lambda s: last in s)
        assert server.record(tag).finished.wait(10)
        screen = tmux.wait_for(lambda s: "streaming" not in s)
        tmux.run("send-keys", "-t", "0", "C-q")
        tmux.wait_exit()
    finally:
        tmux.kill()
    return capture.read_bytes(), screen


@pytest.mark.slow
@pytest.mark.timeout(120)
@pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")
def test_tide_chat_in_tmux_on_a_hostile_stream(server: LLMServer, tmp_path: Path) -> None:
    chosen = [p for p in PAYLOADS if p.name not in MESSAGE_END]
    hostile = "\n\n".join(p.payload for p in chosen)
    benign = sanitize(hostile)
    assert benign == "\n\n".join(p.visible for p in chosen)
    base_raw, _ = chat_run(server, tmp_path, benign, "baseline")
    raw, screen = chat_run(server, tmp_path, hostile, "hostile")
    assert len(raw) > 1000 and len(base_raw) > 1000, "pipe-pane captured nothing"
    extra = {
        sig: (raw.count(sig), base_raw.count(sig))
        for sig in FORBIDDEN
        if raw.count(sig) > base_raw.count(sig)
    }
    assert not extra, f"signatures beyond the baseline (hostile, baseline): {extra}"
    # The answer ran to its end and its last plain paragraph is on screen (what is above
    # it depends on the scroll position, so only the last one is certain).
    last = [v for v in benign.split("\n\n") if PLAIN.match(v)][-1]
    assert last in screen and "done" in screen, screen
