"""The debug log: a planted key never reaches it, its file is private, it has no escapes.

reliability.md §4 D5/D6.  The request goes through real httpx/httpcore to a real HTTP
server on 127.0.0.1 that echoes the credential back in headers and body, and the test
proves (with an unfiltered capture on the child loggers) that the canary really passed
through logging before checking it is absent from the file.
"""

from __future__ import annotations

import logging
import os
import stat
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from tokentide import redact as redaction
from tokentide.logsetup import (
    RedactingFilter,
    check_private,
    close_debug_log,
    redact,
    register_secret,
    setup_debug_log,
)

CANARY = "sk-test-CANARY123"
PLAIN_CANARY = "plainCANARYvalue-77"  # no key shape: only registration can catch it

posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")


class EchoHandler(BaseHTTPRequestHandler):
    """Echoes the credential headers back: in Set-Cookie, a custom header and the body."""

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length", "0"))
        self.rfile.read(length)
        auth = self.headers.get("authorization", "")
        key = self.headers.get("x-api-key", "")
        body = f'{{"echo": "{auth}", "key": "{key}", "note": "\x1b]0;PWN\x07ok"}}'.encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Set-Cookie", f"session={auth.removeprefix('Bearer ')}; HttpOnly")
        self.send_header("X-Echo-Api-Key", key)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), EchoHandler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


@pytest.fixture(autouse=True)
def clean_logging() -> Iterator[None]:
    yield
    close_debug_log()
    redaction._forget_secrets()


class Capture(logging.Handler):
    """An unfiltered handler: what the loggers really emitted."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def raw_capture() -> Iterator[Capture]:
    cap = Capture()
    loggers = [logging.getLogger(n) for n in ("httpcore", "httpx", "tokentide.test")]
    for lg in loggers:
        lg.addHandler(cap)
    yield cap
    for lg in loggers:
        lg.removeHandler(cap)


def log_exchange(
    request: httpx.Request | None = None, response: httpx.Response | None = None
) -> None:
    """What a careless client logs (openai-python #1082): raw headers and the body."""
    log = logging.getLogger("tokentide.test")
    if request is not None:
        log.debug("request headers %s", request.headers.raw)
        log.debug("request headers dict %r", dict(request.headers))
    if response is not None:
        response.read()
        log.debug("response headers %s", response.headers.raw)
        log.debug("response body %s", response.text)


def test_canary_never_reaches_the_log_through_real_httpx(
    tmp_path: Path, server: str, raw_capture: Capture
) -> None:
    register_secret(PLAIN_CANARY)
    log_path = setup_debug_log(tmp_path / "logs" / "debug.log")
    headers = {"Authorization": f"Bearer {CANARY}", "x-api-key": PLAIN_CANARY}
    with httpx.Client(
        event_hooks={"request": [log_exchange], "response": [lambda r: log_exchange(response=r)]}
    ) as client:
        r = client.post(f"{server}/v1/chat/completions", headers=headers, json={"q": 1})
    assert r.status_code == 200
    try:
        raise RuntimeError(f"server said {r.text}")
    except RuntimeError:
        logging.getLogger("tokentide.test").exception("request failed")
    close_debug_log()

    raw = "\n".join(raw_capture.lines)
    # The canaries did pass through logging: httpcore logs response header tuples,
    # our hooks log the request headers and the body.
    assert CANARY in raw and PLAIN_CANARY in raw
    assert any("receive_response_headers" in line for line in raw_capture.lines)

    text = log_path.read_text(encoding="utf-8")
    assert "receive_response_headers" in text  # httpcore DEBUG is captured
    assert "HTTP Request: POST" in text  # httpx INFO too
    assert "request failed" in text and "Traceback" in text
    assert CANARY not in text
    assert PLAIN_CANARY not in text
    assert "CANARY" not in text
    assert "\x1b" not in text and "\x07" not in text
    assert "(b'Set-Cookie', b'***')" in text  # httpcore's tuple shape, value masked


async def test_canary_never_reaches_the_log_through_async_httpx(
    tmp_path: Path, server: str
) -> None:
    log_path = setup_debug_log(tmp_path / "debug.log")
    async with httpx.AsyncClient() as client:
        r = await client.post(
            f"{server}/x", headers={"Authorization": f"Bearer {CANARY}"}, content=b"{}"
        )
        logging.getLogger("tokentide.test").debug(
            "body %s headers %r", r.text, r.request.headers.raw
        )
    close_debug_log()
    text = log_path.read_text(encoding="utf-8")
    assert "receive_response_headers" in text
    assert "body {" in text
    assert CANARY not in text


@pytest.mark.parametrize(
    ("line", "leak"),
    [
        ("(b'authorization', b'Bearer abc.def-123')", "abc.def-123"),
        ("[(b'Authorization', b'Basic dXNlcjpwYXNz'), (b'Host', b'x')]", "dXNlcjpwYXNz"),
        ("{'api-key': 'azure0123456789'}", "azure0123456789"),
        ('{"x-api-key": "anthropicvalue"}', "anthropicvalue"),
        ("Proxy-Authorization: Digest opaque=1234", "opaque=1234"),
        ("cookie: a=1; b=secretcookie", "secretcookie"),
        ("(b'set-cookie', b'sid=zzz123; Path=/')", "zzz123"),
        ("api_key='value-of-key'", "value-of-key"),
        ("connecting with Bearer eyJhbGciOi.payload", "eyJhbGciOi"),
        ("key is sk-proj-AbCdEf0123456789", "AbCdEf0123456789"),
        ("key is sk-ant-api03-xyzxyzxyzxyz", "xyzxyzxyzxyz"),
        ("token hf_abcdefghijklmnopqrstu in env", "hf_abcdefghijklmnopqrstu"),
        ("jwt eyJhbGciOiJIUzI1.eyJzdWIiOiIxMjM0.c2lnbmF0dXJl", "c2lnbmF0dXJl"),
    ],
)
def test_redact_shapes(line: str, leak: str) -> None:
    out = redact(line)
    assert leak not in out
    assert "***" in out


def test_redact_keeps_ordinary_text() -> None:
    text = "usage prompt_tokens=12 completion_tokens=3; the cookie jar is empty; sk-8 short"
    assert redact(text) == text


def test_registered_secret_and_minimum_length() -> None:
    register_secret("  my-very-own-key-1  ")
    register_secret("short")
    assert redact("x my-very-own-key-1 y") == "x *** y"
    assert redact("a short word") == "a short word"


def test_secret_split_by_escape_sequence_is_still_redacted(tmp_path: Path) -> None:
    register_secret(PLAIN_CANARY)
    path = setup_debug_log(tmp_path / "d.log")
    half = len(PLAIN_CANARY) // 2
    logging.getLogger("tokentide.test").warning(
        "value %s", PLAIN_CANARY[:half] + "\x1b[0m" + PLAIN_CANARY[half:]
    )
    close_debug_log()
    text = path.read_text(encoding="utf-8")
    assert "value ***" in text
    assert PLAIN_CANARY not in text


def test_escape_sequences_are_stripped_from_the_log(tmp_path: Path) -> None:
    path = setup_debug_log(tmp_path / "d.log")
    log = logging.getLogger("tokentide.test")
    log.info("model said %s", "hi\x1b]52;c;cHduZWQ=\x07 there\x1b[2J\x9b31m!\r\n")
    log.debug("\x1b]0;TITLE\x07%d", 5)
    close_debug_log()
    text = path.read_text(encoding="utf-8")
    assert "model said hi there!" in text
    assert "cHduZWQ" not in text and "TITLE" not in text
    assert " 5\n" in text
    assert not any(c in text for c in "\x1b\x07\x9b\r")


def test_root_handlers_present_at_setup_are_filtered_too(tmp_path: Path) -> None:
    cap = Capture()
    root = logging.getLogger()
    root.addHandler(cap)
    try:
        setup_debug_log(tmp_path / "d.log")
        logging.getLogger("httpx").debug("Authorization: Bearer %s", CANARY)
        close_debug_log()
        logging.getLogger("tokentide.test").warning("after close %s", "\x1b[2J")
    finally:
        root.removeHandler(cap)
    assert "Authorization: ***" in cap.lines
    assert cap.lines[-1] == "after close \x1b[2J"  # the filter is gone with the log


def test_close_restores_levels(tmp_path: Path) -> None:
    httpx_logger = logging.getLogger("httpx")
    before = httpx_logger.level
    setup_debug_log(tmp_path / "d.log")
    assert httpx_logger.level == logging.DEBUG
    n_handlers = len(logging.getLogger().handlers)
    setup_debug_log(tmp_path / "e.log")  # replaces, does not stack
    assert len(logging.getLogger().handlers) == n_handlers
    close_debug_log()
    assert httpx_logger.level == before


def test_bad_format_string_does_not_lose_the_record(tmp_path: Path) -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "%d items", ("many",), None)
    assert RedactingFilter().filter(record)
    assert "log formatting failed" in record.getMessage()


@posix_only
def test_file_and_directory_modes(tmp_path: Path) -> None:
    old = os.umask(0o000)  # the most permissive umask must not widen anything
    try:
        path = setup_debug_log(tmp_path / "new" / "dir" / "debug.log")
        logging.getLogger("tokentide.test").warning("hello")
        close_debug_log()
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700

        wide = tmp_path / "wide.log"
        wide.write_text("old\n")
        wide.chmod(0o644)
        setup_debug_log(wide)
        assert stat.S_IMODE(wide.stat().st_mode) == 0o600
        close_debug_log()
        assert wide.read_text().startswith("old\n")  # appended, not truncated
    finally:
        os.umask(old)


@posix_only
def test_default_path_is_private_under_the_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TIDE_DATA_DIR", str(tmp_path / "data"))
    (tmp_path / "data" / "logs").mkdir(parents=True)
    (tmp_path / "data" / "logs").chmod(0o755)
    path = setup_debug_log(None)
    close_debug_log()
    assert path.parent == tmp_path / "data" / "logs"
    assert path.name.startswith("debug-") and path.suffix == ".log"
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@posix_only
def test_check_private(tmp_path: Path) -> None:
    key = tmp_path / "my keys.toml"
    assert check_private(key) is None  # missing
    key.write_text("k")
    key.chmod(0o600)
    assert check_private(key) is None
    key.chmod(0o644)
    warning = check_private(key)
    assert warning is not None
    assert "readable by others" in warning and "0644" in warning
    assert f"chmod 600 '{key}'" in warning
    key.chmod(0o620)
    assert "writable by others" in (check_private(key) or "")
    tmp_path.chmod(0o755)
    assert "chmod 700" in (check_private(tmp_path) or "")
