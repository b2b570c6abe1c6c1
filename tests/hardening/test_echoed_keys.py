"""A key the server echoes back ("Invalid API key provided: Bearer …") is never shown or
stored (issue 10, item 5): not on `tide ask`'s stdout or stderr (its "retrying" lines
included, in text and --json), not in an error's message, not in the history database
or its export.  The key here has no well-known shape (no ``sk-``): only the registry of
keys tide sent can catch it."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.servers.llm_server import LLMServer
from tokentide.backends.base import GenerationRequest
from tokentide.backends.registry import create_backend
from tokentide.config.model import Profile
from tokentide.errors import HTTPStatusError
from tokentide.generation import Generation
from tokentide.history.export import to_json
from tokentide.history.store import HistoryStore

KEY = f"zq9.{uuid.uuid4().hex}.plainvalue"
ECHO = f"Invalid API key provided: {KEY}. Authorization was Bearer {KEY}"


def _env(tmp_path: Path) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("TIDE_", "OPENAI"))}
    environ["TIDE_CONFIG"] = str(tmp_path / "config.toml")
    environ["TIDE_DATA_DIR"] = str(tmp_path / "data")
    environ["ECHO_KEY"] = KEY
    return environ


@pytest.mark.timeout(90)
@pytest.mark.parametrize("status", [401, 503])
@pytest.mark.parametrize("mode", [[], ["--json"], ["--no-stream"]])
def test_tide_ask_never_prints_an_echoed_key(
    server: LLMServer, tmp_path: Path, status: int, mode: list[str]
) -> None:
    env = _env(tmp_path)
    url = server.url(status=status, error_message=ECHO, retry_after="0")
    Path(env["TIDE_CONFIG"]).write_text(
        f'[profiles.p]\napi = "openai"\nurl = "{url}/v1"\nmodel = "m"\n'
        'api_key_env = "ECHO_KEY"\nmax_retries = 1\n'
    )
    result = subprocess.run(
        [sys.executable, "-m", "tokentide", "ask", "-P", "p", *mode, "hello"],
        stdin=subprocess.DEVNULL, capture_output=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 4, result.stderr
    out = result.stdout + result.stderr
    assert KEY.encode() not in out
    assert b"Invalid API key provided: ***" in out  # the message itself is kept
    if status == 503 and "--no-stream" not in mode:
        assert b"retrying" in out  # the retry line was printed, and it is clean too


async def test_an_echoed_key_is_not_in_the_error_the_history_or_an_export(
    server: LLMServer, tmp_path: Path
) -> None:
    profile = Profile(
        name="p",
        api="openai",
        url=server.url(status=401, error_message=ECHO, tag="echoed-key") + "/v1",
        model="m",
        api_key_env="ECHO_KEY",
        max_retries=0,
    )
    backend = create_backend(profile, {"ECHO_KEY": KEY})
    gen = Generation(backend, GenerationRequest.from_prompt("hi", model="m"))
    try:
        async with gen:
            await gen.wait()
    finally:
        await backend.aclose()
    error = gen.error
    assert isinstance(error, HTTPStatusError)
    assert server.record("echoed-key").headers["authorization"] == f"Bearer {KEY}"  # it was sent
    assert KEY not in str(error) and KEY not in error.body and "***" in str(error)

    store = HistoryStore.open(tmp_path / "history.db")
    conversation = store.create_conversation(profile="p")
    store.add_message(conversation, "user", "hi")
    answer = store.begin_answer(conversation, profile="p", model="m")
    store.finish_answer(answer, ECHO, status="error", error=ECHO)
    exported = to_json(store.load(conversation))
    store.close()
    assert KEY not in exported
    assert KEY.encode() not in (tmp_path / "history.db").read_bytes()
