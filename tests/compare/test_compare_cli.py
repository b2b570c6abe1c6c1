"""``tide compare`` headless, through the real command (``python -m tokentide``) in a
subprocess, against the loopback server.  stdout is a pipe, so the command runs
headless even without --json/--csv."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.servers.llm_server import LLMServer
from tokentide.compare.runner import CSV_FIELDS

RUN_FIELDS = {*CSV_FIELDS, "gaps_s", "text"}
SUMMARY_FIELDS = {
    "target", "mode", "runs", "ok", "errors", "ttft_p50_s", "ttft_p90_s", "total_p50_s",
    "total_p90_s", "tokens_p50", "tokens_per_s_p50", "gap_p50_s", "gap_p99_s",
    "texts_matched", "texts_compared", "unit",
}  # fmt: skip


@pytest.fixture
def env(tmp_path: Path, loopback: LLMServer) -> dict[str, str]:
    config = tmp_path / "config.toml"
    fast = loopback.url(tokens=6, delay=0.02) + "/v1"
    slow = loopback.url(tokens=6, delay=0.02, first_delay=0.3) + "/v1"
    config.write_text(
        f'default = "fast"\n'
        f'[profiles.fast]\napi = "openai"\nurl = "{fast}"\nmodel = "m"\nmax_retries = 0\n'
        f'[profiles.slow]\napi = "openai"\nurl = "{slow}"\nmodel = "m"\nmax_retries = 0\n'
    )
    return {
        **os.environ,
        "TIDE_CONFIG": str(config),
        "TIDE_DATA_DIR": str(tmp_path / "data"),
        "NO_COLOR": "1",
    }


def tide(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tokentide", "compare", *args],
        capture_output=True, text=True, env=env, timeout=timeout, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def test_json_has_every_field_for_every_run(loopback: LLMServer, env: dict[str, str]) -> None:
    url = loopback.url(tokens=20, delay=0.05) + "/v1"
    proc = tide("Count.", "--api", "openai", "--url", url, "--model", "m",
                "--runs", "2", "--warmup", "1", "--json", env=env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["runs"] == 2 and doc["warmup"] == 1 and doc["sequential"] is False
    assert doc["modes"] == ["stream", "create"] and doc["completed"] is True
    assert doc["interrupted"] is False and doc["prompt"] == "Count."
    [target] = doc["targets"]
    assert target["label"] == "m" and target["profile"] == "command line"
    assert target["api"] == "openai"
    assert "/k/" in target["url"] and target["model"] == "m"
    results = doc["results"]
    assert len(results) == 4 and len(doc["warmup_results"]) == 2
    for run in [*results, *doc["warmup_results"]]:
        assert set(run) == RUN_FIELDS
        assert run["state"] == "done" and run["error_type"] is None
        assert run["tokens"] == 20 and run["text"] == " ".join(f"w{i}" for i in range(20))
        assert run["text_matched"] is True
    stream = [r for r in results if r["mode"] == "stream"]
    create = [r for r in results if r["mode"] == "create"]
    assert [r["run"] for r in stream] == [1, 2] == [r["run"] for r in create]
    assert all(r["ttft_s"] < 0.4 and len(r["gaps_s"]) == 19 for r in stream)
    assert all(r["ttft_s"] > 0.9 and r["gaps_s"] == [] for r in create)
    assert [s["mode"] for s in doc["summaries"]] == ["stream", "create"]
    assert all(set(s) == SUMMARY_FIELDS for s in doc["summaries"])
    [sentence] = doc["sentences"]
    # (the totals are within 10 % on a quiet machine; a loaded one may say "longer")
    assert "sooner when streaming" in sentence and "total time " in sentence


def test_table_on_a_pipe_several_profiles(env: dict[str, str]) -> None:
    proc = tide("Hi", "-P", "fast", "-P", "slow", "--runs", "1", "--warmup", "0",
                "--sequential", env=env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "\x1b" not in out
    lines = out.splitlines()
    assert lines[0] == "1 run per target × mode, one request at a time"
    header = lines[2]
    assert header.split()[:3] == ["target", "mode", "ok/runs"]
    rows = [line.split() for line in lines[3:7]]
    assert [(r[0], r[1], r[2]) for r in rows] == [
        ("fast", "stream", "1/1"),
        ("fast", "create", "1/1"),
        ("slow", "stream", "1/1"),
        ("slow", "create", "1/1"),
    ]
    # The table's columns line up: every row is as long as the header.
    assert {len(line) for line in lines[2:7]} == {len(header)}
    assert any(line.startswith("fast: first token") for line in lines)
    assert any(line.startswith("stream: first token soonest from fast") for line in lines)
    assert any(line.startswith("slow: openai http://127.0.0.1:") for line in lines)


def test_csv_rows(env: dict[str, str]) -> None:
    proc = tide("Hi", "--mode", "stream", "--runs", "3", "--warmup", "0", "--csv", env=env)
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader(io.StringIO(proc.stdout)))
    assert tuple(rows[0]) == CSV_FIELDS
    assert [(r["target"], r["mode"], r["run"], r["state"]) for r in rows] == [
        ("fast", "stream", str(i), "done") for i in (1, 2, 3)
    ]
    assert all(r["tokens"] == "6" and r["error_type"] == "" for r in rows)


def test_one_side_failing_exits_4_and_reports_each_run(
    loopback: LLMServer, env: dict[str, str]
) -> None:
    url = loopback.url(tokens=5, delay=0.01, create_status=429) + "/v1"
    proc = tide("Hi", "--api", "openai", "--url", url, "--runs", "2", "--warmup", "0", env=env)
    assert proc.returncode == 4, proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    host = url.split("/")[2]
    assert [line.split()[:3] for line in lines[3:5]] == [
        [host, "stream", "2/2"],
        [host, "create", "0/2"],
    ]
    errors = lines[lines.index("errors:") + 1 :]
    # (an ad-hoc target without --model is named by its host)
    assert errors[0].startswith(f"  {host} create run 1: Overloaded: ")
    assert errors[1].startswith(f"  {host} create run 2: Overloaded: ")


@pytest.mark.parametrize(
    "args",
    [
        ["Hi", "--json", "--csv"],
        ["--json"],  # no prompt, stdin not a pipe with text
        ["Hi", "-P", "nope"],
        ["Hi", "--runs", "0"],
        ["Hi", "--mode", "sideways"],
        ["Hi", "--api", "nonsense"],
    ],
)
def test_usage_errors_exit_2(args: list[str], env: dict[str, str]) -> None:
    proc = tide(*args, env=env)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr and proc.stderr.strip()


def test_ctrl_c_cancels_every_generation_and_exits_130(
    loopback: LLMServer, env: dict[str, str], wait_request: Callable[..., None]
) -> None:
    url = loopback.url(tokens=400, delay=0.05, tag="sigint") + "/v1"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tokentide", "compare", "Hi", "--api", "openai", "--url", url,
         "--runs", "1", "--warmup", "0", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_request("sigint", count=2)  # both modes' requests reached the server
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "stopped" in err
    assert "non-streaming request was in flight" in err
    doc = json.loads(out)
    assert doc["interrupted"] is True and doc["completed"] is False and doc["results"] == []
    records = [r for r in loopback.records if r.tag == "sigint"]
    assert len(records) == 2
    for record in records:
        assert record.finished.wait(5)
        assert record.disconnected_at is not None  # the client closed both requests
        assert not record.completed


def test_a_template_applies_to_each_profile_and_flags_beat_it(
    loopback: LLMServer, env: dict[str, str]
) -> None:
    config = Path(env["TIDE_CONFIG"])
    url = loopback.url(tokens=3, tag="compare-template") + "/v1"
    config.write_text(
        f'[profiles.t]\napi = "openai"\nurl = "{url}"\nmodel = "m"\nmax_retries = 0\n'
        '[templates.terse]\nprofile = "t"\nsystem = "One word."\ntemperature = 0.3\n'
        "max_tokens = 9\n"
    )
    proc = tide("Hi", "-t", "terse", "--temperature", "0", "--runs", "1", "--warmup", "0",
                "--json", env=env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    bodies = [r.body for r in loopback.records if r.tag == "compare-template"]
    assert sorted(body["stream"] for body in bodies) == [False, True]
    for body in bodies:
        assert body["messages"][0] == {"role": "system", "content": "One word."}
        assert (body["temperature"], body["max_tokens"]) == (0, 9)


def test_dash_t_is_a_template_not_a_temperature(env: dict[str, str]) -> None:
    proc = tide("Hi", "-t", "0.5", "--json", env=env)
    assert proc.returncode == 2
    assert "No template named '0.5'" in proc.stderr and "--temperature 0.5" in proc.stderr
