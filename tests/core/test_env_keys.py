"""Keys and URLs from the environment (issue 11, item 4), through a real ``python -m
tokentide`` against the loopback test server: a provider's key (``OPENAI_API_KEY``,
``ANTHROPIC_API_KEY``, ``HF_TOKEN``) reaches 127.0.0.1 only when the profile names it or
when the provider's base-URL variable points there; ``OPENAI_BASE_URL`` and
``OLLAMA_HOST`` give the url; ``tide config show`` says where each key comes from."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.servers.llm_server import LLMServer

CANARY = "sk-envkey-CANARY-0123456789abcdef"
_PROVIDER_VARS = (
    "OPENAI_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL",
    "HF_TOKEN", "OLLAMA_HOST",
)  # fmt: skip


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    environ = {
        k: v for k, v in os.environ.items() if not k.startswith("TIDE_") and k not in _PROVIDER_VARS
    }
    environ["TIDE_CONFIG"] = str(tmp_path / "config.toml")
    environ["TIDE_DATA_DIR"] = str(tmp_path / "data")
    return environ


def tide(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tokentide", *args],
        capture_output=True, text=True, env=env, timeout=60, check=False,
        stdin=subprocess.DEVNULL, encoding="utf-8", errors="surrogateescape",
    )  # fmt: skip


def write_config(env: dict[str, str], text: str) -> None:
    path = Path(env["TIDE_CONFIG"])
    path.write_text(text, encoding="utf-8")
    path.chmod(0o600)


def ask_ok(env: dict[str, str], *args: str) -> None:
    result = tide("ask", "hello", *args, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "The quick brown fox jumps over the lazy dog.\n"
    assert CANARY not in result.stdout + result.stderr


# -- OPENAI_API_KEY ----------------------------------------------------------------------


def test_the_openai_key_is_not_sent_to_a_local_server(
    server: LLMServer, env: dict[str, str]
) -> None:
    env["OPENAI_API_KEY"] = CANARY
    ask_ok(env, "--api", "openai", "--url", server.url(tag="env-local") + "/v1")
    assert "authorization" not in server.record("env-local").headers


def test_the_openai_key_goes_where_openai_base_url_points(
    server: LLMServer, env: dict[str, str]
) -> None:
    env["OPENAI_API_KEY"] = CANARY
    env["OPENAI_BASE_URL"] = server.base + "/v1"
    # The same origin written differently (upper case, explicit path) still matches.
    url = server.url(tag="env-base").replace("http://127.0.0.1", "HTTP://127.0.0.1")
    ask_ok(env, "--api", "openai", "--url", url + "/v1")
    assert server.record("env-base").headers["authorization"] == f"Bearer {CANARY}"


def test_openai_without_url_uses_openai_base_url(server: LLMServer, env: dict[str, str]) -> None:
    env["OPENAI_API_KEY"] = CANARY
    env["OPENAI_BASE_URL"] = server.url(tag="env-nourl") + "/v1"
    ask_ok(env, "--api", "openai", "--model", "m")
    record = server.record("env-nourl")
    assert record.path.endswith("/v1/chat/completions")
    assert record.headers["authorization"] == f"Bearer {CANARY}"


def test_a_base_url_on_another_port_does_not_get_the_key(
    server: LLMServer, env: dict[str, str]
) -> None:
    env["OPENAI_API_KEY"] = CANARY
    env["OPENAI_BASE_URL"] = "http://127.0.0.1:9/v1"  # another origin than the server's
    ask_ok(env, "--api", "openai", "--url", server.url(tag="env-otherport") + "/v1")
    assert "authorization" not in server.record("env-otherport").headers


def test_a_profile_that_names_the_variable_sends_it_anywhere(
    server: LLMServer, env: dict[str, str]
) -> None:
    env["OPENAI_API_KEY"] = CANARY
    env["MY_KEY"] = CANARY + "-mine"
    url = server.url(tag="env-named") + "/v1"
    write_config(
        env, f'[profiles.p]\napi = "openai"\nurl = "{url}"\napi_key_env = "OPENAI_API_KEY"\n'
    )
    ask_ok(env, "-P", "p")
    assert server.record("env-named").headers["authorization"] == f"Bearer {CANARY}"
    url = server.url(tag="env-flag") + "/v1"
    ask_ok(env, "--api", "openai", "--url", url, "--api-key-env", "MY_KEY")
    assert server.record("env-flag").headers["authorization"] == f"Bearer {CANARY}-mine"


def test_a_key_in_the_file_is_sent_and_the_env_key_is_not(
    server: LLMServer, env: dict[str, str]
) -> None:
    env["OPENAI_API_KEY"] = CANARY
    url = server.url(tag="env-file") + "/v1"
    write_config(
        env, f'[profiles.p]\napi = "openai"\nurl = "{url}"\napi_key = "file-key-0123456789"\n'
    )
    ask_ok(env, "-P", "p")
    assert server.record("env-file").headers["authorization"] == "Bearer file-key-0123456789"


def test_a_bad_openai_base_url_is_a_config_error_naming_it(env: dict[str, str]) -> None:
    env["OPENAI_BASE_URL"] = "ftp://example.com/v1"
    result = tide("ask", "hello", "--api", "openai", env=env)
    assert result.returncode == 2
    assert "$OPENAI_BASE_URL" in result.stderr


# -- ANTHROPIC_API_KEY, HF_TOKEN -----------------------------------------------------------


def test_the_anthropic_key_goes_only_to_anthropic_base_url(
    server: LLMServer, env: dict[str, str]
) -> None:
    env["ANTHROPIC_API_KEY"] = CANARY
    base = ["--api", "anthropic", "--model", "claude"]
    ask_ok(env, *base, "--url", server.url(tag="env-anth-local"))
    assert "x-api-key" not in server.record("env-anth-local").headers
    env["ANTHROPIC_BASE_URL"] = server.url(tag="env-anth-base")
    ask_ok(env, *base)  # no --url: ANTHROPIC_BASE_URL
    assert server.record("env-anth-base").headers["x-api-key"] == CANARY


def test_hf_token_is_not_sent_to_a_local_tgi(server: LLMServer, env: dict[str, str]) -> None:
    env["HF_TOKEN"] = "hf_" + CANARY
    ask_ok(env, "--api", "tgi", "--url", server.url(tag="env-tgi"))
    assert "authorization" not in server.record("env-tgi").headers


# -- OLLAMA_HOST ---------------------------------------------------------------------------


def test_ollama_host_without_a_scheme_is_the_url(server: LLMServer, env: dict[str, str]) -> None:
    host_port = server.base.removeprefix("http://")
    env["OLLAMA_HOST"] = f"{host_port}/k/tag=env-ollama"  # host:port, as `ollama` takes it
    ask_ok(env, "--api", "ollama", "--model", "llama3")
    assert server.record("env-ollama").path.endswith("/api/chat")


def test_ollama_host_as_a_bind_address_is_reached_on_loopback(
    server: LLMServer, env: dict[str, str]
) -> None:
    port = server.base.rpartition(":")[2]
    env["OLLAMA_HOST"] = f"0.0.0.0:{port}"
    before = len(server.records)
    ask_ok(env, "--api", "ollama", "--model", "llama3")
    assert server.records[before:] and server.records[-1].path.endswith("/api/chat")


# -- tide config show ----------------------------------------------------------------------


def test_config_show_says_where_each_key_comes_from(server: LLMServer, env: dict[str, str]) -> None:
    env["OPENAI_API_KEY"] = CANARY
    env["MY_KEY"] = CANARY + "-mine"
    env["OLLAMA_HOST"] = "127.0.0.1:1234"
    local = server.base + "/v1"
    write_config(
        env,
        f'[profiles.cloud]\napi = "openai"\n'
        f'[profiles.local]\napi = "openai"\nurl = "{local}"\n'
        f'[profiles.named]\napi = "openai"\nurl = "{local}"\napi_key_env = "MY_KEY"\n'
        f'[profiles.unset]\napi = "openai"\nurl = "{local}"\napi_key_env = "NOT_SET_XYZ"\n'
        f'[profiles.infile]\napi = "openai"\nurl = "{local}"\napi_key = "{CANARY}-file"\n'
        f'[profiles.llama]\napi = "ollama"\n',
    )
    result = tide("config", "show", env=env)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert CANARY not in out + result.stderr
    sections = {block.split("]", 1)[0]: block for block in out.split("[profiles.")[1:]}
    assert "# url: 'https://api.openai.com/v1', the provider's default" in sections["cloud"]
    assert "# key: from $OPENAI_API_KEY (provider default)" in sections["cloud"]
    assert (
        "# key: none — $OPENAI_API_KEY is set but not sent to 127.0.0.1 (not the provider's "
        "host); set api_key_env to send it"
    ) in sections["local"]
    assert "# key: from $MY_KEY (api_key_env)" in sections["named"]
    assert "# key: none — $NOT_SET_XYZ (api_key_env) is not set" in sections["unset"]
    assert "# key: in the config file" in sections["infile"]
    assert "# url: 'http://127.0.0.1:1234', $OLLAMA_HOST" in sections["llama"]
    # OPENAI_BASE_URL pointing at the local server: the key now goes there.
    env["OPENAI_BASE_URL"] = local
    out = tide("config", "show", env=env).stdout
    assert CANARY not in out
    local_section = out.split("[profiles.local]", 1)[1].split("[profiles.", 1)[0]
    assert "# key: from $OPENAI_API_KEY (provider default)" in local_section
