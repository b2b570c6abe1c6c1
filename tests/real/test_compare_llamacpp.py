"""``tide compare`` against the real llama.cpp server (llama-cpp-python ``[server]``) with
SmolLM2-135M-Instruct: at temperature 0 both modes return the same text, and streaming
shows its first token well before the non-streamed answer arrives.  The tables are
printed (``pytest -s``) so the ratio can be read."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.real.llamacpp_server import serve_llamacpp

pytestmark = pytest.mark.real_server

PROMPT = "Name three colours and say one thing about each."


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    """The server as it starts by default (it interrupts a running request when another
    arrives: ``interrupt_requests`` is true)."""
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed")
    with serve_llamacpp() as url:
        yield url


@pytest.fixture(scope="module")
def queueing_url() -> Iterator[str]:
    """The server started with ``--interrupt_requests False``: a second request waits."""
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed")
    with serve_llamacpp(options=("--interrupt_requests", "False")) as url:
        yield url


def tide_compare(base_url: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TIDE_CONFIG": str(tmp_path / "none.toml"), "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-m", "tokentide", "compare", PROMPT, "--api", "openai",
         "--url", base_url, "--max-tokens", "48", "--temperature", "0", "--seed", "7", *args],
        capture_output=True, text=True, env=env, timeout=110, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def test_sequential_same_text_and_first_token_sooner(base_url: str, tmp_path: Path) -> None:
    proc = tide_compare(
        base_url, tmp_path, "--sequential", "--runs", "2", "--warmup", "1", "--json"
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    results = doc["results"]
    assert len(results) == 4 and all(r["state"] == "done" for r in results)
    stream = [r for r in results if r["mode"] == "stream"]
    create = [r for r in results if r["mode"] == "create"]
    for s, c in zip(stream, create, strict=True):
        assert s["text"].strip() and s["text"] == c["text"]
        assert s["text_matched"] is True
        assert s["events"] > 3  # really streamed, token by token
        assert s["ttft_s"] < c["ttft_s"]
    print()
    print("sequential:", *doc["sentences"])
    summaries = {x["mode"]: x for x in doc["summaries"]}
    assert summaries["create"]["ttft_p50_s"] / summaries["stream"]["ttft_p50_s"] > 2


def test_concurrent_on_a_server_that_queues(queueing_url: str, tmp_path: Path) -> None:
    proc = tide_compare(queueing_url, tmp_path, "--runs", "2", "--warmup", "1")
    print()
    print(proc.stdout)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert [line.split()[1:3] for line in lines[3:5]] == [["stream", "2/2"], ["create", "2/2"]]
    assert any("same text in both modes" in line for line in lines)


def test_concurrent_on_a_server_that_interrupts_is_reported_not_hidden(
    base_url: str, tmp_path: Path
) -> None:
    """llama-cpp-python's default server cuts a running request off when another arrives:
    the cut request ends at once with no content.  That must show as a failed run (exit
    4), never as a 0-token success with a flattering total."""
    proc = tide_compare(base_url, tmp_path, "--runs", "2", "--warmup", "0", "--json")
    doc = json.loads(proc.stdout)
    results = doc["results"]
    print()
    print("interrupting server:", [(r["mode"], r["state"], r["error_type"]) for r in results])
    for r in results:
        assert (r["state"], r["error_type"]) in (("done", None), ("error", "EmptyAnswer"))
        assert r["state"] == "error" or r["text"].strip()
    failed = [r for r in results if r["state"] == "error"]
    assert proc.returncode == (4 if failed else 0)
