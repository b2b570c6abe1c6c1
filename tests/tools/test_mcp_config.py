"""The ``{"mcpServers": ...}`` JSON: both transports, ``${VAR}`` expansion, values never
shown, and errors a person can act on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tokentide.errors import ConfigError
from tokentide.redact import redact
from tokentide.tools.mcp_config import (
    HttpServer,
    StdioServer,
    load_mcp_file,
    parse_mcp_json,
    parse_servers,
)

CLAUDE_DESKTOP = {
    "globalShortcut": "Ctrl+Space",  # the app's own settings beside the servers: ignored
    "mcpServers": {
        "files": {
            "command": "npx",
            "args": ["-y", "@modelcontextprotocol/server-filesystem", "/tmp"],
            "env": {"GITHUB_TOKEN": "${GH_TOKEN_FOR_TEST}", "MODE": "fast", "LEVEL": 3},
            "cwd": "/tmp",
        },
        "web": {
            "url": "https://mcp.example.com/mcp",
            "headers": {"Authorization": "Bearer ${WEB_KEY_FOR_TEST}"},
            "trust": True,
        },
        "typed": {"type": "http", "url": "http://127.0.0.1:9/mcp"},
        "off": {"command": "never-started", "disabled": True},
    },
}
ENV = {"GH_TOKEN_FOR_TEST": "ghp_abcdefghij0123456789", "WEB_KEY_FOR_TEST": "k-0123456789abcdef"}


def parse(document: object, environ: dict[str, str] | None = None):
    return parse_mcp_json(json.dumps(document), source="mcp.json", environ=environ or ENV)


def test_claude_desktop_files_load_with_both_transports() -> None:
    files, web, typed = parse(CLAUDE_DESKTOP)
    assert isinstance(files, StdioServer)
    assert (files.name, files.command, files.cwd, files.trust) == ("files", "npx", "/tmp", False)
    assert files.args == ("-y", "@modelcontextprotocol/server-filesystem", "/tmp")
    assert dict(files.env) == {
        "GITHUB_TOKEN": "ghp_abcdefghij0123456789",
        "MODE": "fast",
        "LEVEL": "3",
    }
    assert isinstance(web, HttpServer) and web.trust
    assert dict(web.headers) == {"Authorization": "Bearer k-0123456789abcdef"}
    assert isinstance(typed, HttpServer) and typed.url == "http://127.0.0.1:9/mcp"
    assert files.source == "mcp.json"


def test_values_never_show_in_a_repr_and_expanded_ones_are_redacted() -> None:
    files, web, _ = parse(CLAUDE_DESKTOP)
    shown = repr(files) + repr(web) + str((files, web))
    assert "ghp_abcdefghij" not in shown and "k-0123456789abcdef" not in shown
    assert "'GITHUB_TOKEN': '***'" in shown and "'Authorization': '***'" in shown
    # Registered as secrets: a log line or error quoting one is masked.
    assert "k-0123456789abcdef" not in redact("header was k-0123456789abcdef")


def test_header_values_and_secret_named_env_values_are_secrets_even_when_literal() -> None:
    document = {
        "mcpServers": {
            "a": {"command": "x", "env": {"MY_API_KEY": "literal-key-4567", "DIR": "/srv/dir-abc"}},
            "b": {"url": "http://h/mcp", "headers": {"X-Custom": "Token lit-token-9876"}},
        }
    }
    parse(document, {})
    assert redact("literal-key-4567 lit-token-9876 /srv/dir-abc") == "*** *** /srv/dir-abc"


def test_a_missing_variable_names_the_server_and_variable_but_no_value() -> None:
    document = {"mcpServers": {"gh": {"command": "x", "env": {"T": "${NOT_SET_ANYWHERE}"}}}}
    with pytest.raises(ConfigError) as caught:
        parse(document, {"OTHER": "secret-value-123"})
    message = str(caught.value)
    assert "'gh'" in message and "env.T" in message and "${NOT_SET_ANYWHERE}" in message
    assert "secret-value-123" not in message


def test_defaults_and_bare_dollars() -> None:
    document = {
        "mcpServers": {
            "s": {
                "command": "x",
                "env": {"A": "${UNSET_X:-fallback}", "B": "pa$word", "C": "$HOME"},
            }
        }
    }
    (server,) = parse(document, {"HOME": "/home/u"})
    assert dict(server.env) == {"A": "fallback", "B": "pa$word", "C": "$HOME"}


@pytest.mark.parametrize(
    ("server", "expected"),
    [
        ({"command": "x", "url": "http://h/mcp"}, "has both 'command' and 'url'"),
        ({"args": ["a"]}, "has neither 'command' nor 'url'"),
        ({"command": "x", "arg": ["a"]}, "unknown key 'arg'"),
        ({"command": "x", "headers": {}}, "does not take ['headers']"),
        ({"url": "ftp://h"}, "http:// or https://"),
        ({"type": "sse", "url": "http://h"}, "'type' 'sse' is not one tokentide speaks"),
        ({"type": "stdio", "url": "http://h"}, "does not take ['url']"),
        ({"command": ["x"]}, "'command' must be a non-empty string"),
        ({"command": "x", "env": ["A=1"]}, "'env' must be an object"),
        ({"command": "x", "trust": "yes"}, "'trust' must be true or false"),
        ("npx server", "must be an object"),
    ],
)
def test_broken_servers_are_errors_naming_the_server(server: object, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse({"mcpServers": {"bad": server}})
    assert "MCP server 'bad' in mcp.json" in str(caught.value)
    assert expected in str(caught.value)


def test_broken_json_says_where(tmp_path: Path) -> None:
    path = tmp_path / "mcp.json"
    path.write_text('{\n  "mcpServers": {\n    "a": {"command": "x",}\n  }\n}\n')
    with pytest.raises(ConfigError, match=r"mcp\.json: not valid JSON at line 3, column 26"):
        load_mcp_file(path, environ={})
    path.write_text('{"servers": {}}')
    with pytest.raises(ConfigError, match='no "mcpServers" object'):
        load_mcp_file(path, environ={})
    with pytest.raises(ConfigError, match="does not exist"):
        load_mcp_file(tmp_path / "none.json", environ={})


def test_a_config_table_has_the_same_shape() -> None:
    (server,) = parse_servers(
        {"calc": {"command": "python", "args": ["calc.py"], "trust": True}},
        source="config.toml",
        environ={},
    )
    assert isinstance(server, StdioServer) and server.trust and server.source == "config.toml"
