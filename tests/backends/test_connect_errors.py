"""A server that cannot be reached is one line naming the URL and one hint, exit 3
(issue 11 item 10): ``tide ask`` as a real process against a real closed port, an
unresolvable name and a plain-HTTP port spoken to over https."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.servers.llm_server import LLMServer

HINT = "Is the server running? Start it, or point tide at another one with --url or a profile."
GRPC_NOTE = " (Triton's gRPC port is 8001; 8000 is HTTP)"


def closed_port() -> int:
    """A port nothing listens on: bound, then closed."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def ask(env: dict[str, str], *args: str) -> tuple[int, list[str], bytes]:
    result = subprocess.run(
        [sys.executable, "-m", "tokentide", "ask", "hi", *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        env=env,
        timeout=60,
        check=False,
    )
    return result.returncode, result.stderr.decode().splitlines(), result.stdout


@pytest.mark.parametrize(
    ("api", "url", "named", "hint"),
    [
        ("openai", "http://127.0.0.1:{port}/v1", "http://127.0.0.1:{port}/v1/chat/completions",
         HINT),
        ("ollama", "http://127.0.0.1:{port}", "http://127.0.0.1:{port}/api/chat", HINT),
        ("triton-grpc", "127.0.0.1:{port}", "grpc://127.0.0.1:{port}",
         HINT[:-1] + GRPC_NOTE + "."),
    ],
    ids=["openai", "ollama", "triton-grpc"],
)  # fmt: skip
def test_a_closed_port_is_one_line_and_one_hint(
    env: dict[str, str], api: str, url: str, named: str, hint: str
) -> None:
    port = closed_port()
    code, lines, stdout = ask(env, "--api", api, "--url", url.format(port=port), "--model", "m")
    reason = (
        "connection refused, or not gRPC (HTTP/2) on that port"
        if api == "triton-grpc"
        else "connection refused (nothing is listening there)"
    )
    # Said once, at once: a refused connection is not retried (no "retrying" lines).
    assert (code, stdout) == (3, b"")
    assert lines == [f"error: Cannot connect to {named.format(port=port)}: {reason}.", hint]


def test_the_password_in_the_url_is_masked(env: dict[str, str]) -> None:
    port = closed_port()
    url = f"http://bob:hunter2pw@127.0.0.1:{port}/v1"
    code, lines, _ = ask(env, "--api", "openai", "--url", url, "--model", "m")
    assert code == 3
    assert lines == [
        f"error: Cannot connect to http://bob:***@127.0.0.1:{port}/v1/chat/completions: "
        "connection refused (nothing is listening there).",
        HINT,
    ]


def test_a_named_profile_is_named_in_the_hint(env: dict[str, str]) -> None:
    port = closed_port()
    Path(env["TIDE_CONFIG"]).write_text(
        f'[profiles.dead]\napi = "ollama"\nurl = "http://127.0.0.1:{port}"\nmodel = "m"\n'
    )
    code, lines, _ = ask(env, "-P", "dead")
    assert code == 3
    assert lines == [
        f"error: Cannot connect to http://127.0.0.1:{port}/api/chat: "
        "connection refused (nothing is listening there).",
        "Is the server running? Start it, or fix the url of profile 'dead'.",
    ]


def test_an_unresolvable_host_says_so(env: dict[str, str]) -> None:
    # .invalid never resolves (RFC 6761); the resolver answers at once.
    code, lines, _ = ask(env, "--api", "openai", "--url", "http://no-such-host.invalid/v1")
    assert code == 3 and len(lines) == 2, lines
    assert lines[0].startswith(
        "error: Cannot connect to http://no-such-host.invalid/v1/chat/completions: "
        "the host name 'no-such-host.invalid' could not be resolved"
    )
    assert lines[1] == (
        "Is the host name right? Correct it, or point tide at another one with --url or a profile."
    )


def test_https_to_a_plain_http_port_is_a_failed_handshake(
    env: dict[str, str], server: LLMServer
) -> None:
    url = server.url().replace("http://", "https://", 1) + "/v1"
    code, lines, _ = ask(env, "--api", "openai", "--url", url, "--model", "m")
    assert code == 3 and len(lines) == 2, lines
    assert lines[0].startswith(
        f"error: Cannot connect to {url}/chat/completions: the TLS handshake"
    )
    assert lines[1] == "Check that the server speaks https on that port (or use http://)."
