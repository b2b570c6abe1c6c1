"""End to end in a real terminal: ``python -m tokentide chat`` in tmux (private socket,
120×40) against the loopback LLM server streaming paced tokens.  Type a prompt, watch
the answer grow over several captures, press Esc, then check the partial answer on
screen, in the history database, and the disconnect on the server."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pytest

from tests.servers.llm_server import LLMServer
from tokentide.history.store import HistoryStore

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux"),
]

ROOT = Path(__file__).resolve().parents[2]


class Tmux:
    def __init__(self, env: dict[str, str]) -> None:
        self.socket = f"tide-test-{uuid.uuid4().hex[:10]}"
        self.env = env

    def run(self, *args: str) -> str:
        result = subprocess.run(
            ["tmux", "-L", self.socket, *args],
            capture_output=True,
            text=True,
            env=self.env,
            check=True,
            timeout=10,
        )
        return result.stdout

    def start(self, command: str) -> None:
        self.run("-f", "/dev/null", "new-session", "-d", "-x", "120", "-y", "40", command)

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", "0")

    def keys(self, *keys: str) -> None:
        self.run("send-keys", "-t", "0", *keys)

    def wait_for(self, condition: Callable[[str], bool], timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if condition(screen):
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"screen never matched; last capture:\n{screen}")
            time.sleep(0.05)

    def wait_exit(self, timeout: float = 10.0) -> None:
        """Wait until the app in the pane has exited (its session ends with it)."""
        deadline = time.monotonic() + timeout
        while True:
            alive = subprocess.run(
                ["tmux", "-L", self.socket, "has-session"],
                capture_output=True,
                env=self.env,
                check=False,
            )
            if alive.returncode != 0:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"the app did not exit; last capture:\n{self.screen()}")
            time.sleep(0.05)

    def kill(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True, check=False)


def tide_env(config: Path, data: Path) -> dict[str, str]:
    """The environment of a tide started in tmux: this checkout's sources, its own config
    and data dir, a 256-colour terminal, nothing of the caller's tmux or tide settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TIDE_", "TMUX"))}
    env.update(
        TIDE_CONFIG=str(config),
        TIDE_DATA_DIR=str(data),
        TERM="xterm-256color",
        PYTHONPATH=str(ROOT / "src"),
    )
    return env


def words(screen: str) -> int:
    """The highest ``wN`` token number on screen, +1 (0 if none)."""
    found = [int(n) for n in re.findall(r"\bw(\d+)\b", screen)]
    return max(found) + 1 if found else 0


def test_type_watch_stop_in_a_real_terminal(
    server: LLMServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    config = tmp_path / "config.toml"
    url = server.url(tokens=2000, delay=0.03, tag="e2e") + "/v1"
    config.write_text(
        f'default = "loop"\n\n[profiles.loop]\napi = "openai"\nurl = "{url}"\nmodel = "m"\n'
    )
    env = tide_env(config, data)
    tmux = Tmux(env)
    tmux.start(f"{sys.executable} -m tokentide chat")
    try:
        tmux.wait_for(lambda s: "Send" in s and "loop" in s)
        tmux.keys("Tell me a story", "Enter")  # one read: the Enter must not overtake the text

        seen: list[int] = []
        while len(seen) < 4:
            screen = tmux.wait_for(lambda s: words(s) > (seen[-1] if seen else 0))
            seen.append(words(screen))
        assert seen == sorted(seen) and len(set(seen)) == 4, seen
        assert "Tell me a story" in screen
        assert "streaming" in screen

        pressed = time.monotonic()
        tmux.keys("Escape")
        record = server.record("e2e")
        assert record.finished.wait(5), "the server never finished the request"
        assert record.disconnected_at is not None, "the server never saw the disconnect"
        # tmux, the terminal parser's Esc timeout and the app: generous but bounded.
        assert record.disconnected_at - pressed < 1.0

        screen = tmux.wait_for(lambda s: "stopped" in s)
        shown = words(screen)
        assert 0 < shown <= record.tokens_sent
        assert "esc stops" not in screen

        tmux.keys("C-q")
        tmux.wait_exit()
    finally:
        tmux.kill()

    monkeypatch.setenv("TIDE_DATA_DIR", str(data))
    store = HistoryStore.open()
    try:
        conversation_id = store.last_conversation_id()
        assert conversation_id is not None
        messages = store.load(conversation_id).messages
    finally:
        store.close()
    assert [(m.role, m.status) for m in messages] == [
        ("user", "complete"),
        ("assistant", "stopped"),
    ]
    assert messages[0].content == "Tell me a story"
    saved = messages[1].content
    assert saved.startswith("w0 w1") and words(saved) >= shown


def test_markup_from_the_server_and_config_is_shown_literally_in_a_real_terminal(
    server: LLMServer, tmp_path: Path
) -> None:
    """Issue 10, item 8 and 3 in a real terminal: a model named ``[/]m`` (from the
    config) and a finish reason ``[@click=app.quit]done[/]`` (from the server) are shown
    as written; the app neither crashes nor runs the action (the answer stays on screen
    after the reason is painted), and starting again with ``--continue`` (the label now
    comes from history) works too."""
    data = tmp_path / "data"
    config = tmp_path / "config.toml"
    reason = "[@click=app.quit]done[/]"
    url = server.url(text="Literal answer.", finish=reason, tag="markup") + "/v1"
    config.write_text(
        f'default = "loop"\n\n[profiles.loop]\napi = "openai"\nurl = "{url}"\nmodel = "[/]m"\n'
    )
    env = tide_env(config, data)
    for command, prompt in (("chat", True), ("chat --continue", False)):
        tmux = Tmux(env)
        tmux.start(f"{sys.executable} -m tokentide {command}")
        try:
            tmux.wait_for(lambda s: "Send" in s and "loop" in s)
            if prompt:
                tmux.keys("Say something", "Enter")
            # Live, and reopened from history (its saved finish reason and stats).
            screen = tmux.wait_for(partial(_shows_all, ["Literal answer.", reason]))
            assert "[/]m" in screen
            assert "Traceback" not in screen
            tmux.keys("C-q")
            tmux.wait_exit()
        finally:
            tmux.kill()


def _shows_all(texts: list[str], screen: str) -> bool:
    return all(text in screen for text in texts)


def test_alt_o_copies_the_code_block_in_a_real_terminal(server: LLMServer, tmp_path: Path) -> None:
    """Issue 11: in a terminal alt+o arrives as ESC o, and the focused composer took it
    as the letter "o"; the binding now comes first."""
    config = tmp_path / "config.toml"
    url = server.url(text="Here:\n\n```py\nprint(1)\n```\n", tag="alt-o") + "/v1"
    config.write_text(f'[profiles.loop]\napi = "openai"\nurl = "{url}"\nmodel = "m"\n')
    env = tide_env(config, tmp_path / "data")
    tmux = Tmux(env)
    tmux.start(f"{sys.executable} -m tokentide chat -P loop")
    try:
        tmux.wait_for(lambda s: "Send" in s)
        tmux.keys("hi", "Enter")
        tmux.wait_for(lambda s: "print(1)" in s)
        tmux.keys("M-o")
        tmux.wait_for(lambda s: "Copied the code block" in s)
        tmux.keys("C-q")
        tmux.wait_exit()
    finally:
        tmux.kill()


def test_ctrl_g_composes_the_prompt_in_the_editor_in_a_real_terminal(
    server: LLMServer, tmp_path: Path
) -> None:
    """Issue 11 item 7: the app suspends, $VISUAL edits the draft, the composer gets it
    back and the app paints again; the edited prompt is what is sent."""
    config = tmp_path / "config.toml"
    url = server.url(text="Got it.", tag="editor") + "/v1"
    config.write_text(f'[profiles.loop]\napi = "openai"\nurl = "{url}"\nmodel = "m"\n')
    editor = tmp_path / "editor.sh"
    # A real full-screen program would own the terminal; this one shows a line, waits
    # for Enter (so the test sees the app was really suspended), then edits the file.
    editor.write_text(
        '#!/bin/sh\necho "EDITOR OPEN: $(cat "$1")"\nread line\n'
        'printf "%s and more from the editor\\n" "$(cat "$1")" > "$1"\n'
    )
    editor.chmod(0o755)
    env = tide_env(config, tmp_path / "data")
    env["VISUAL"] = str(editor)
    tmux = Tmux(env)
    tmux.start(f"{sys.executable} -m tokentide chat -P loop")
    try:
        tmux.wait_for(lambda s: "Send" in s)
        tmux.keys("a draft")
        tmux.wait_for(lambda s: "a draft" in s)
        tmux.keys("C-g")
        tmux.wait_for(lambda s: "EDITOR OPEN: a draft" in s and "Send" not in s)
        tmux.keys("Enter")
        tmux.wait_for(lambda s: "a draft and more from the editor" in s and "Send" in s)
        tmux.keys("Enter")
        tmux.wait_for(lambda s: "Got it." in s)
        tmux.keys("C-q")
        tmux.wait_exit()
    finally:
        tmux.kill()
    (sent,) = [r for r in server.records if r.tag == "editor" and r.method == "POST"]
    assert "a draft and more from the editor" in json.dumps(sent.body)


def test_versions_of_answers_and_prompts_in_a_real_terminal(
    server: LLMServer, tmp_path: Path
) -> None:
    """Issue 12: ctrl+r adds a version of the answer (‹ 2/2 ›), alt+left (ESC [1;3D in
    a terminal) goes back to the first, an edited prompt is a version of its own and the
    answer to it (the server echoes the prompt it got) carries the edited text."""
    config = tmp_path / "config.toml"
    url = server.url(echo=1, tag="versions") + "/v1"
    config.write_text(f'[profiles.loop]\napi = "openai"\nurl = "{url}"\nmodel = "m"\n')
    env = tide_env(config, tmp_path / "data")
    tmux = Tmux(env)
    tmux.start(f"{sys.executable} -m tokentide chat -P loop")
    try:
        tmux.wait_for(lambda s: "Send" in s)
        tmux.keys("first question", "Enter")
        # Idle again (the footer no longer offers esc to stop), not merely painted: a
        # ctrl+r while the answer is still being finished is "still answering".
        tmux.wait_for(
            lambda s: s.count("first question") >= 2 and "stop ·" in s and "esc Stop" not in s
        )
        tmux.keys("C-r")
        tmux.wait_for(lambda s: "‹ 2/2 ›" in s and "esc Stop" not in s)
        tmux.keys("M-Left")
        tmux.wait_for(lambda s: "‹ 1/2 ›" in s)
        tmux.keys("C-l")
        tmux.wait_for(lambda s: "editing a prompt" in s)
        tmux.keys(" reworded", "Enter")  # the composer holds the prompt: add to it
        tmux.wait_for(lambda s: s.count("first question reworded") >= 2 and "‹ 2/2 ›" in s)
        tmux.keys("C-q")
        tmux.wait_exit()
    finally:
        tmux.kill()
    with HistoryStore.open(tmp_path / "data" / "history.sqlite3") as store:
        [summary] = store.list_conversations()
        assert summary.message_count == 5  # 2 prompts, 3 answers: nothing replaced
        branch = store.load(summary.id).messages
        assert [m.content for m in branch if m.role == "user"] == ["first question reworded"]
