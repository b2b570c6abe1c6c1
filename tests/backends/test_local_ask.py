"""``tide ask`` with a local predictor that prints or tries to exit: a real
``python -m tokentide`` process (issue 10: predictors are isolated from tide's own
stdout, stderr and exit).  The in-process side is ``test_local_isolation.py``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

PREDICTORS = Path(__file__).resolve().parents[1] / "predictors"
PROFILES = {
    "noisy": "noisy.py:generate",
    "noisy_eager": "noisy.py:eager",
    "noisy_async": "noisy.py:agenerate",
    "exits": "quitter.py:exit_midway",
    "interrupts": "quitter.py:interrupt_midway",
    "exits_at_import": "quit_at_import.py:generate",
}
PRINTED = ("IMPORT-PRINT", "GEN-PRINT", "GEN-STDERR", "GEN-WRITE", "GEN-BUFFER", "EAGER", "ASYNC")


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("TIDE_", "OPENAI"))}
    config = tmp_path / "config.toml"
    config.write_text(
        "".join(
            f'[profiles.{name}]\napi = "local"\ntarget = "{PREDICTORS / target}"\n\n'
            for name, target in PROFILES.items()
        )
    )
    environ["TIDE_CONFIG"] = str(config)
    environ["TIDE_DATA_DIR"] = str(tmp_path / "data")
    return environ


def ask(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "tokentide", "ask", *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        env=env,
        timeout=60,
        check=False,
    )


def assert_no_prints(output: bytes) -> None:
    for marker in PRINTED:
        assert marker.encode() not in output, (marker, output)
    assert b"\x1b" not in output


@pytest.mark.parametrize(
    ("profile", "answer"),
    [("noisy", b"The answer is 42."), ("noisy_eager", b"eager answer")],
)
@pytest.mark.parametrize("mode", [[], ["--no-stream"]])
def test_predictor_prints_never_reach_stdout_or_stderr(
    env: dict[str, str], profile: str, answer: bytes, mode: list[str]
) -> None:
    result = ask("-P", profile, "hello", *mode, env=env)

    assert result.returncode == 0, result.stderr
    assert result.stdout == answer + b"\n"
    assert result.stderr == b""


def test_predictor_prints_go_to_the_debug_log_sanitised(env: dict[str, str]) -> None:
    result = ask("--debug", "-P", "noisy", "hello", env=env)

    assert result.returncode == 0, result.stderr
    assert result.stdout == b"The answer is 42.\n"
    assert_no_prints(result.stdout + result.stderr)
    log = (Path(env["TIDE_DATA_DIR"]) / "debug.log").read_text()
    for line in (
        "wrote to stdout: IMPORT-PRINT",
        "wrote to stdout: GEN-PRINT-1",
        "wrote to stderr: GEN-STDERR",
        "wrote to stdout: GEN-WRITE no newlineGEN-BUFFER",
        "wrote to stdout: GEN-PRINT-LAST",
    ):
        assert line in log, line
    assert "\x1b" not in log and "\x07" not in log  # sanitised like every log record


def test_async_predictor_prints_never_reach_stdout(env: dict[str, str]) -> None:
    result = ask("--debug", "-P", "noisy_async", "hello", env=env)

    assert result.returncode == 0, result.stderr
    assert result.stdout == b"async answer\n"
    assert_no_prints(result.stdout + result.stderr)
    log = (Path(env["TIDE_DATA_DIR"]) / "debug.log").read_text()
    assert "wrote to stdout: ASYNC-PRINT-1" in log and "wrote to stderr: ASYNC-PRINT-2" in log


@pytest.mark.parametrize(
    ("profile", "partial", "message"),
    [
        ("exits", b"partial answer", b"quitter.py:exit_midway called sys.exit(3)"),
        ("interrupts", b"partial ", b"quitter.py:interrupt_midway raised KeyboardInterrupt"),
    ],
)
def test_an_exit_midway_is_an_error_with_the_partial_answer_kept(
    env: dict[str, str], profile: str, partial: bytes, message: bytes
) -> None:
    result = ask("-P", profile, "hello", env=env)

    assert result.returncode == 4, result.stderr
    assert result.stdout == partial + b"\n"  # what came before the exit is kept
    assert result.stderr.startswith(b"error: ")
    assert message in result.stderr
    assert b"Traceback" not in result.stderr


def test_an_exit_midway_without_streaming_is_an_error(env: dict[str, str]) -> None:
    result = ask("-P", "exits", "--no-stream", "hello", env=env)

    assert result.returncode == 4, result.stderr
    assert result.stdout == b""
    assert b"called sys.exit(3)" in result.stderr


def test_an_exit_at_import_is_a_config_error(env: dict[str, str]) -> None:
    result = ask("-P", "exits_at_import", "hello", env=env)

    assert result.returncode == 2, result.stderr
    assert result.stdout == b""
    assert result.stderr.startswith(b"tide: ")
    assert b"quit_at_import.py' called sys.exit(7)" in result.stderr
    assert b"IMPORT-BEFORE-EXIT" not in result.stderr
