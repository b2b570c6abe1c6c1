"""Tools in the real app in a real terminal (tmux): an MCP server written with the SDK
starts in the background, the model's call opens the approval dialog, `y` runs it, the
call's block and the answer after it are on screen, and when the app quits the server's
process is gone."""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from pathlib import Path

import pytest

from tests.servers.llm_server import LLMServer
from tests.tui.test_tmux_e2e import Tmux, tide_env

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux"),
]

TOOLSERVER = Path(__file__).parents[1] / "tools" / "servers" / "toolserver.py"


def test_an_mcp_tool_is_approved_and_runs_in_a_real_terminal(
    server: LLMServer, tmp_path: Path
) -> None:
    mcp = tmp_path / "mcp.json"
    mcp.write_text(json.dumps({"mcpServers": {"calc": {
        "command": sys.executable, "args": [str(TOOLSERVER), "--state", str(tmp_path)],
    }}}))  # fmt: skip
    url = server.url(tag="tmux-tools", tool="pid", tool_once=1, echo=1, tool_args="{}") + "/v1"
    config = tmp_path / "config.toml"
    config.write_text(
        f'default = "loop"\nmcp = ["{mcp}"]\n\n[profiles.loop]\napi = "openai"\nurl = "{url}"\n'
        'model = "m"\n'
    )
    tmux = Tmux(tide_env(config, tmp_path / "data"))
    tmux.start(f"{sys.executable} -m tokentide chat")
    try:
        tmux.wait_for(lambda s: "Send" in s and "loop" in s)
        # The server is ready once its tools are offered: the palette's Tools says so.
        tmux.keys("C-p")
        tmux.wait_for(lambda s: "Search for commands" in s)
        tmux.keys("Tools")
        tmux.wait_for(lambda s: "MCP servers and functions" in s)
        tmux.keys("Enter")
        tmux.wait_for(lambda s: "calc · MCP server · ready" in s, timeout=60)
        tmux.keys("Escape")
        tmux.wait_for(lambda s: "calc · MCP server" not in s)
        tmux.keys("which pid?", "Enter")
        screen = tmux.wait_for(lambda s: "Run calc.pid()?" in s)
        assert "from the MCP server 'calc'" in screen
        tmux.keys("y")
        screen = tmux.wait_for(lambda s: re.search(r"▸ calc\.pid\(\) → \d+", s) is not None)
        match = re.search(r"▸ calc\.pid\(\) → (\d+)", screen)
        assert match is not None
        pid = int(match.group(1))
        os.kill(pid, 0)  # the server is running while the app is
        tmux.keys("C-q")
        tmux.wait_exit()
    finally:
        tmux.kill()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # the app stopped it as it quit
