"""`tide config show` / `config check` / `config path` with a hostile config, through the
real command line: no escape sequence reaches the terminal, names stay recognisable, and
no secret is printed."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.servers.llm_server import LLMServer

# ESC, BEL, CSI/OSC/ST and every other C1 control, and C0 controls except \n and \t.
TERMINAL_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")

OSC_TITLE = r"\u001b]0;pwned\u0007"
OSC_CLIPBOARD = r"\u001b]52;c;aGFja2Vk\u0007"
CSI_CLEAR = r"x\u001b[2Jy"
C1_CSI = r"z\u009b2Jw"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("TIDE_")}
    environ["TIDE_CONFIG"] = str(tmp_path / "config.toml")
    environ["TIDE_DATA_DIR"] = str(tmp_path / "data")
    return environ


def tide(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tokentide", *args],
        capture_output=True, text=True, env=env, timeout=60, check=False, stdin=subprocess.DEVNULL,
        encoding="utf-8", errors="surrogateescape",
    )  # fmt: skip


def write_config(env: dict[str, str], text: str, mode: int = 0o600) -> Path:
    path = Path(env["TIDE_CONFIG"])
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    return path


def assert_no_controls(result: subprocess.CompletedProcess[str]) -> None:
    for name, stream in (("stdout", result.stdout), ("stderr", result.stderr)):
        found = TERMINAL_CONTROL.search(stream)
        assert found is None, f"{name} has {found.group()!r}: {stream!r}"


def hostile_config(url: str = "http://127.0.0.1:9/v1") -> str:
    return (
        f'default = "{CSI_CLEAR}"\n'
        f'[profiles."{OSC_TITLE}"]\napi = "openai"\nurl = "{url}"\n'
        f'[profiles."{OSC_CLIPBOARD}"]\napi = "openai"\nurl = "{url}"\nmodel = "{OSC_TITLE}"\n'
        f'[profiles."{CSI_CLEAR}"]\napi = "openai"\nurl = "{url}"\nmodel = "{OSC_CLIPBOARD}"\n'
        f"max_retries = 0\n"
        f'[profiles."{C1_CSI}"]\napi = "tgi"\nurl = "{url}"\nsystem = "{C1_CSI}"\n'
        f'headers = {{ "X-Note" = "{C1_CSI}" }}\nparams = {{ "{OSC_TITLE}" = "{OSC_TITLE}" }}\n'
    )


def test_show_writes_no_escape_and_keeps_names_visible(env: dict[str, str]) -> None:
    write_config(env, hostile_config())
    result = tide("config", "show", env=env)
    assert result.returncode == 0, result.stderr
    assert_no_controls(result)
    out = result.stdout
    assert r"[profiles.'\x1b]0;pwned\x07']" in out
    assert r"[profiles.'\x1b]52;c;aGFja2Vk\x07']" in out
    assert r"default = 'x\x1b[2Jy'" in out
    assert r"[profiles.'z\x9b2Jw']" in out
    assert r"model = '\x1b]0;pwned\x07'" in out


def test_check_writes_no_escape_from_names(env: dict[str, str], server: LLMServer) -> None:
    write_config(env, hostile_config(f"{server.url()}/v1"))
    ok = tide("config", "check", "-P", "\x1b]52;c;aGFja2Vk\x07", env=env)
    assert ok.returncode == 0, ok.stderr
    assert_no_controls(ok)
    assert ok.stdout.startswith("ok: openai") and r"\x1b]0;pwned\x07" in ok.stdout


def test_check_errors_write_no_escape(env: dict[str, str]) -> None:
    write_config(env, hostile_config())
    dead = tide("config", "check", env=env)  # the default profile: nothing listens on :9
    assert dead.returncode == 3
    assert_no_controls(dead)
    unknown = tide("config", "check", "-P", "\x1b]0;other\x07", env=env)
    assert unknown.returncode == 2
    assert_no_controls(unknown)
    assert r"\x1b]0;other\x07" in unknown.stderr
    write_config(env, f'[profiles.a]\napi = "{OSC_TITLE}"\n')
    bad_api = tide("config", "show", env=env)
    assert bad_api.returncode == 2
    assert_no_controls(bad_api)
    assert r"unknown api '\x1b]0;pwned\x07'" in bad_api.stderr


def test_path_writes_no_escape(env: dict[str, str], tmp_path: Path) -> None:
    env["TIDE_CONFIG"] = str(tmp_path / "c\x1b]0;x\x07.toml")
    result = tide("config", "path", env=env)
    assert result.returncode == 0
    assert_no_controls(result)
    assert r"c\x1b]0;x\x07.toml" in result.stdout


def test_show_masks_every_secret(env: dict[str, str]) -> None:
    write_config(
        env,
        '[profiles.p]\napi = "openai"\n'
        'url = "https://alice:hunter2-url@api.example.com/v1?api-key=hunter2-query&v=1"\n'
        'api_key = "sk-hunter2-file-key"\n'
        'headers = { Authorization = "Bearer hunter2-bearer", x-api-key = "hunter2-xak", '
        'api-key = "hunter2-ak", "X-Auth-Token" = "hunter2-tok", "X-Team" = "team-a", '
        '"X-Other" = "Bearer hunter2-by-value" }\n'
        'params = { api_key = "hunter2-param", max_tokens = 256, nested = { access_token = '
        '"hunter2-nested", client_secret = "hunter2-cs", password = "hunter2-pw" }, '
        "stop_token_ids = [1, 2] }\n",
    )
    result = tide("config", "show", env=env)
    assert result.returncode == 0, result.stderr
    everything = result.stdout + result.stderr
    assert "hunter2" not in everything, everything
    out = result.stdout
    assert "url = 'https://alice:***@api.example.com/v1?api-key=***&v=1'" in out
    assert "api_key = '***'" in out
    for name in ("Authorization", "x-api-key", "api-key", "X-Auth-Token", "X-Other"):
        assert f"'{name}': '***'" in out
    assert "'X-Team': 'team-a'" in out  # not a secret: shown, so the user can check it
    assert "'max_tokens': 256" in out and "'stop_token_ids': [1, 2]" in out


def test_world_readable_file_with_header_secrets_warns_on_stderr(env: dict[str, str]) -> None:
    path = write_config(
        env,
        '[profiles.p]\napi = "openai"\nurl = "http://h/v1"\n'
        'headers = { Authorization = "Bearer hunter2-bearer" }\n',
        mode=0o644,
    )
    result = tide("config", "show", env=env)
    assert result.returncode == 0
    assert f"chmod 600 {path}" in result.stderr and "headers.Authorization" in result.stderr
    assert "hunter2" not in result.stdout + result.stderr


def test_bad_values_exit_2_with_file_and_line(env: dict[str, str]) -> None:
    path = write_config(env, '[profiles.p]\napi = "openai"\nurl = "http://[::1]:99999/v1"\n')
    result = tide("config", "show", env=env)
    assert result.returncode == 2
    assert f"{path}:3: " in result.stderr and "Traceback" not in result.stderr
    write_config(env, "a = " + "[" * 100_000 + "\n")
    deep = tide("config", "show", env=env)
    assert deep.returncode == 2
    assert "nested too deeply" in deep.stderr and "Traceback" not in deep.stderr


def test_check_failure_masks_the_url_password_and_keeps_the_hint_line(
    env: dict[str, str],
) -> None:
    write_config(
        env,
        '[profiles.t]\napi = "openai"\nurl = "http://bob:hunter2pw@127.0.0.1:9/v1"\n'
        "max_retries = 0\n",
    )
    dead = tide("config", "check", "-P", "t", env=env)
    assert dead.returncode == 3
    assert_no_controls(dead)
    assert "hunter2pw" not in dead.stdout + dead.stderr
    assert "http://bob:***@127.0.0.1:9/v1" in dead.stderr
    message, hint = dead.stderr.strip().split("\n")  # the hint stays on its own line
    assert message.startswith("tide: Cannot connect") and "profile 't'" in hint
