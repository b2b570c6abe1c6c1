"""Secrets (issue 7, reliability.md §4 D5/D6): a planted canary key never appears in the
debug log, stdout, stderr, ``tide config show`` or ``tide history export``, with debug
logging on, on success and on error; a config file holding ``api_key`` that others can
read draws an ssh-style warning."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers.llm_server import LLMServer

CANARY = f"sk-test-CANARY{uuid.uuid4().hex}"


def tide(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "tokentide", *args],
        stdin=subprocess.DEVNULL, capture_output=True, env=env, timeout=60, check=False,
    )  # fmt: skip


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("TIDE_", "OPENAI"))}
    environ["TIDE_CONFIG"] = str(tmp_path / "config.toml")
    environ["TIDE_DATA_DIR"] = str(tmp_path / "data")
    environ["CANARY_KEY"] = CANARY
    return environ


def every_file(root: Path) -> Iterator[Path]:
    yield from (p for p in root.rglob("*") if p.is_file())


@pytest.mark.timeout(90)
def test_canary_key_never_leaks(server: LLMServer, env: dict[str, str], tmp_path: Path) -> None:
    config = Path(env["TIDE_CONFIG"])
    profiles = {
        "ok": server.url(tag="ok"),
        "denied": server.url(status=401, tag="denied"),
        "broken": server.url(status=500, error_message=f"echo {CANARY[:6]}", tag="broken"),
        "inband": server.url(error_at=1, tag="inband"),
    }
    config.write_text(
        'default = "ok"\n'
        + "".join(
            f'[profiles.{name}]\napi = "openai"\nurl = "{url}/v1"\nmodel = "m"\n'
            f'api_key_env = "CANARY_KEY"\nmax_retries = 0\n'
            for name, url in profiles.items()
        )
    )
    outputs: list[bytes] = []
    codes = {}
    for name in profiles:
        result = tide("ask", "--debug", "-P", name, "hello", env=env)
        codes[name] = result.returncode
        outputs += [result.stdout, result.stderr]
        assert b"Traceback" not in result.stderr
    assert codes == {"ok": 0, "denied": 4, "broken": 4, "inband": 4}, codes
    # The key was really used: the server saw it.
    assert server.record("ok").headers["authorization"] == f"Bearer {CANARY}"

    shown = tide("config", "show", env=env)
    assert shown.returncode == 0, shown.stderr
    outputs += [shown.stdout, shown.stderr]
    exported = tide("history", "export", env=env)
    if b"No such command" not in exported.stderr:
        outputs += [exported.stdout, exported.stderr]

    data = Path(env["TIDE_DATA_DIR"])
    log = data / "debug.log"
    assert log.is_file() and log.stat().st_size > 0, "no debug log was written"
    assert log.stat().st_mode & 0o077 == 0, oct(log.stat().st_mode)
    assert b"authorization" in log.read_bytes().lower() or b"POST" in log.read_bytes()
    leaks = [i for i, blob in enumerate(outputs) if CANARY.encode() in blob]
    leaks_files = [str(p) for p in every_file(data) if CANARY.encode() in p.read_bytes()]
    assert not leaks and not leaks_files, (leaks, leaks_files)
    # Nor the key's distinctive middle, in case something shortened it.
    middle = CANARY[14:30].encode()
    assert not any(middle in blob for blob in outputs)
    assert not any(middle in p.read_bytes() for p in every_file(data))


@pytest.mark.timeout(60)
@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_world_readable_config_with_api_key_warns(server: LLMServer, env: dict[str, str]) -> None:
    config = Path(env["TIDE_CONFIG"])
    config.write_text(
        f'[profiles.k]\napi = "openai"\nurl = "{server.url()}/v1"\nmodel = "m"\n'
        f'api_key = "{CANARY}"\n'
    )
    config.chmod(0o644)
    result = tide("ask", "-P", "k", "hello", env=env)
    assert result.returncode == 0, result.stderr
    stderr = result.stderr.decode()
    assert "readable by others" in stderr and "chmod 600" in stderr, stderr
    assert CANARY not in stderr and CANARY.encode() not in result.stdout

    config.chmod(0o600)
    result = tide("ask", "-P", "k", "hello", env=env)
    assert result.returncode == 0
    assert "readable by others" not in result.stderr.decode()
