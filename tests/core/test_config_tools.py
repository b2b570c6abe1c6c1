"""The config file's tool keys (approve, allow_tools, mcp, functions, max_tool_rounds,
tool_timeout, [mcp_servers.NAME], a profile's functions) load into ToolSettings, and a
wrong one is a ConfigError naming the file and the line."""

from __future__ import annotations

from pathlib import Path

import pytest

from tokentide.config.load import load_settings
from tokentide.config.model import ToolSettings
from tokentide.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    path.chmod(0o600)
    return path


def test_no_tool_keys_means_no_tools(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, 'default = "local"\n'))
    assert settings.tools == ToolSettings()
    assert not settings.tools.configured


def test_every_tool_key_loads(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        'approve = "all"\nallow_tools = ["add", "files.*"]\nmcp = ["~/mcp.json"]\n'
        'functions = "tools.py"\nmax_tool_rounds = 3\ntool_timeout = false\n'
        '[mcp_servers.calc]\ncommand = "python"\nargs = ["calc.py"]\n'
        'env = { TOKEN = "${CALC_TOKEN}" }\ntrust = true\n'
        '[mcp_servers.web]\nurl = "http://127.0.0.1:9/mcp"\nheaders = { Authorization = "Bearer ${T}" }\n'
        '[profiles.p]\napi = "openai"\nurl = "http://127.0.0.1:9/v1"\nfunctions = ["more.py"]\n',
    )
    settings = load_settings(path)
    tools = settings.tools
    assert tools.approve == "all"
    assert tools.allow_tools == ("add", "files.*")
    assert tools.mcp_files == ("~/mcp.json",)
    assert tools.functions == ("tools.py",)
    assert (tools.max_rounds, tools.timeout) == (3, None)
    assert tools.mcp_servers["calc"]["args"] == ["calc.py"]
    assert tools.mcp_servers["calc"]["env"] == {"TOKEN": "${CALC_TOKEN}"}  # expanded later
    assert tools.mcp_servers["web"]["url"] == "http://127.0.0.1:9/mcp"
    assert tools.configured
    assert settings.profiles["p"].functions == ("more.py",)


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ('\napprove = "yes"\n', 2, 'approve must be "ask", "all" or "none"'),
        ('\n\nmcp = [1]\n', 3, "mcp must be a list of strings"),
        ("max_tool_rounds = 0\n", 1, "max_tool_rounds must be at least 1"),
        ('tool_timeout = "60"\n', 1, "tool_timeout must be a number of seconds"),
        ('[mcp_servers.calc]\ncommand = "python"\ncomand = "x"\n', 3,
         "MCP server 'calc': unknown key 'comand'. Did you mean 'command'?"),
        ('[mcp_servers.calc]\nargs = ["x"]\n', 1, "needs a command (a program to start) or a url"),
        ('[mcp_servers.calc]\ncommand = "x"\nurl = "http://h:1/"\n', 1, "not both"),
        ('[mcp_servers.calc]\ncommand = "x"\nenv = { A = 1 }\n', 3, "env must be a string"),
        ('[mcp_servers.calc]\ncommand = "x"\nargs = "a b"\n', 3, "args must be a list of strings"),
        ('[mcp_servers.calc]\ncommand = "x"\ntrust = "yes"\n', 3, "trust must be true or false"),
        ('[profiles.p]\napi = "openai"\nfunctions = [true]\n', 3,
         "functions must be a list of strings"),
    ],
)  # fmt: skip
def test_a_wrong_tool_key_names_file_and_line(
    tmp_path: Path, text: str, line: int, message: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    said = str(caught.value)
    assert said.startswith(f"{path}:{line}: "), said
    assert message in said, said


def test_config_show_lists_the_tool_keys_without_env_or_header_values(tmp_path: Path) -> None:
    from tokentide.config.load import BUILTIN_LOCAL
    from tokentide.config.show import show_lines

    path = write(
        tmp_path,
        'approve = "all"\nmcp = ["m.json"]\n[mcp_servers.gh]\ncommand = "gh-mcp"\n'
        'env = { GITHUB_TOKEN = "ghp_secret_value" }\ntrust = true\n'
        '[mcp_servers.web]\nurl = "http://u:pw@127.0.0.1:9/mcp"\n'
        'headers = { Authorization = "Bearer sekrit" }\n',
    )
    text = "\n".join(show_lines(load_settings(path), BUILTIN_LOCAL, env={}))
    assert "approve = 'all'" in text and "mcp = ['m.json']" in text
    assert "[mcp_servers.gh]" in text and "trust = True" in text
    assert "GITHUB_TOKEN" in text and "Authorization" in text
    assert "ghp_secret_value" not in text and "sekrit" not in text and "pw@" not in text
