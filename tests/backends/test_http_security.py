"""The HTTP transport against hostile servers on 127.0.0.1 (issue 10, items 1, 2 and 4,
and the query-string and deep-JSON cases): where the key may go, TLS whatever the
URL's spelling, bodies bounded before they are inflated, and JSON too deep to read."""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.servers.hostile import MIB, bomb_body, deep_json, self_signed_tls
from tests.servers.llm_server import BackendMaker, drain
from tests.servers.raw import LAST_CHUNK, chunk, head, raw_server
from tokentide.backends.base import GenerationRequest
from tokentide.backends.events import TextDelta
from tokentide.backends.http_origin import BaseURL
from tokentide.config.model import Limits
from tokentide.errors import (
    CannotConnect,
    ConfigError,
    HTTPStatusError,
    LimitExceeded,
    ProtocolError,
)

ASK = GenerationRequest.from_prompt("hi")
KEY = "sk-test-0123456789abcdef"
HELLO = b'data: {"choices":[{"delta":{"content":"Hello"}}]}\n\n'
DONE = b"data: [DONE]\n\n"


@pytest.fixture
async def make() -> AsyncIterator[BackendMaker]:
    maker = BackendMaker("openai")
    yield maker
    await maker.aclose()


def keyed(make: BackendMaker, url: str, **profile: Any) -> Any:
    return make(url, api_key_env="TEST_KEY", env={"TEST_KEY": KEY}, **profile)


def saw_key(request: bytes) -> bool:
    return KEY.encode() in request or b"authorization" in request.lower()


# -- 1. TLS is verified however the scheme is spelt ---------------------------------------


@pytest.mark.parametrize("scheme", ["HTTPS", "https", "HttpS"])
async def test_https_in_any_case_verifies_the_certificate(
    make: BackendMaker, tmp_path: Path, scheme: str
) -> None:
    tls = self_signed_tls(tmp_path)
    async with raw_server(head(), chunk(HELLO + DONE), LAST_CHUNK, tls=tls) as server:
        url = server.url.replace("https", scheme, 1) + "/v1"
        events, error = await drain(keyed(make, url).stream(ASK))
    assert events == []
    assert isinstance(error, CannotConnect), error
    assert "certificate" in str(error) and "could not be verified" in str(error)
    assert server.requests == []  # the handshake failed: no request, no Authorization


async def test_a_foreign_https_result_is_verified_too(make: BackendMaker, tmp_path: Path) -> None:
    """An http base whose Muna result names an https URL: that fetch verifies TLS."""
    tls = self_signed_tls(tmp_path)
    refuse = (head(ctype="text/plain"), chunk(b"x"), LAST_CHUNK)
    async with (
        raw_server(*refuse, tls=tls) as other,
        raw_server(*_prediction(other.url + "/blob")) as base,
    ):
        _, error = await drain(_muna(make, base.url).stream(ASK))
    assert isinstance(error, CannotConnect) and "certificate" in str(error), error
    assert other.requests == []


# -- 2. credentials only for the base URL's origin ---------------------------------------


def _prediction(result_url: str, *, stream: bool = True) -> tuple[bytes, ...]:
    obj = {"id": "p", "results": [{"data": result_url, "type": "string"}], "error": None}
    if not stream:
        return head(ctype="application/json"), chunk(json.dumps(obj).encode()), LAST_CHUNK
    event = b"event: prediction\ndata: " + json.dumps(obj).encode() + b"\n\n"
    return head(), chunk(event), LAST_CHUNK


def _muna(make: BackendMaker, url: str) -> Any:
    return make(
        url,
        api="muna",
        api_key_env="TEST_KEY",
        env={"TEST_KEY": KEY},
        headers={"X-Org-Secret": "org-secret-42"},
        options={"tag": "@acme/llm"},
    )


@pytest.mark.parametrize("mode", ["stream", "create"])
async def test_muna_result_on_another_origin_gets_no_credentials(
    make: BackendMaker, mode: str
) -> None:
    async with raw_server(head(ctype="text/plain"), chunk(b"from elsewhere"), LAST_CHUNK) as other:
        steps = _prediction(other.url + "/results/1", stream=mode == "stream")
        async with raw_server(*steps) as base:
            muna = _muna(make, base.url)
            if mode == "stream":
                events, error = await drain(muna.stream(ASK))
                assert error is None, error
                text = "".join(e.text for e in events if isinstance(e, TextDelta))
            else:
                text = (await muna.create(ASK)).text
    assert text == "from elsewhere"
    assert saw_key(base.requests[0]) and b"org-secret-42" in base.requests[0]
    [fetched] = other.requests
    assert fetched.startswith(b"GET /results/1 ")
    assert not saw_key(fetched), fetched
    assert b"org-secret-42" not in fetched


async def test_muna_https_base_refuses_a_plain_http_result(make: BackendMaker) -> None:
    async with raw_server(head(ctype="text/plain"), chunk(b"x"), LAST_CHUNK) as other:
        muna = _muna(make, "https://127.0.0.1:9/v1")
        with pytest.raises(ProtocolError, match="only over https"):
            await muna.fetch(other.url + "/blob")
        with pytest.raises(ProtocolError, match="cannot fetch"):
            await muna.fetch("file:///etc/passwd")
    assert other.requests == []


async def test_a_redirect_is_not_followed(make: BackendMaker) -> None:
    async with raw_server(head(ctype="text/plain"), chunk(b"x"), LAST_CHUNK) as other:
        moved = head(302, reason="Found", headers=(("location", other.url + "/v1/chat"),))
        async with raw_server(moved, chunk(b"moved"), LAST_CHUNK) as base:
            _, error = await drain(keyed(make, base.url + "/v1").stream(ASK))
    assert isinstance(error, HTTPStatusError) and error.status == 302, error
    assert "follows no redirects" in str(error)
    assert other.requests == []


def test_origins_compare_after_normalising() -> None:
    base = BaseURL.parse("HTTPS://Api.Example.COM/v1/")
    assert base.text == "https://api.example.com/v1"
    assert base.same_origin("https://api.example.com:443/files/1")
    assert base.same_origin("HTTPS://API.EXAMPLE.COM/x")
    assert not base.same_origin("http://api.example.com/x")
    assert not base.same_origin("https://api.example.com:8443/x")
    assert not base.same_origin("https://api.example.com.evil.test/x")
    assert not base.same_origin("https://evil.test/?https://api.example.com/")
    assert BaseURL.parse("http://127.0.0.1/v1").same_origin("http://127.0.0.1:80/")
    ipv6 = BaseURL.parse("http://[::1]:8080/v1/")
    assert ipv6.url_for("/x") == "http://[::1]:8080/v1/x"
    assert ipv6.same_origin("http://[::1]:8080/y") and not ipv6.same_origin("http://[::2]:8080/")
    for bad in ("file:///etc/passwd", "ftp://host/x", "javascript:alert(1)", "http://[::1]:99999"):
        with pytest.raises(ConfigError):
            BaseURL.parse(bad)


# -- 4. the base URL's query string stays after the path ---------------------------------


def test_url_for_keeps_the_query_after_the_path() -> None:
    base = BaseURL.parse("https://x.test/openai/deployments/d/?api-version=2024-02-01")
    assert base.text == "https://x.test/openai/deployments/d?api-version=2024-02-01"
    assert base.url_for("/chat/completions") == (
        "https://x.test/openai/deployments/d/chat/completions?api-version=2024-02-01"
    )
    assert base.url_for("/models?limit=5") == (
        "https://x.test/openai/deployments/d/models?api-version=2024-02-01&limit=5"
    )
    assert BaseURL.parse("http://h:1/v1").url_for("/chat") == "http://h:1/v1/chat"


async def test_azure_style_query_reaches_the_server(make: BackendMaker) -> None:
    async with raw_server(head(), chunk(HELLO + DONE), LAST_CHUNK) as server:
        backend = keyed(make, server.url + "/openai/deployments/d?api-version=2024-02-01")
        events, error = await drain(backend.stream(ASK))
    assert error is None and events[0] == TextDelta("Hello")
    assert server.requests[0].startswith(
        b"POST /openai/deployments/d/chat/completions?api-version=2024-02-01 HTTP/1.1"
    )


# -- 3. bodies are bounded before they are inflated --------------------------------------

BOMB_MIB = 256  # ~256 KB on the wire
PEAK = 8 * MIB  # what a 1 MiB limit may cost, with room; unbounded reading needs 64+ MiB


async def _peak_of(coro: Any) -> tuple[Any, int]:
    tracemalloc.start()
    try:
        result = await coro
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _bomb_head(status: int = 200, ctype: str = "application/json", encoding: str = "gzip") -> bytes:
    wire = "deflate" if encoding == "raw-deflate" else encoding
    return head(status, ctype=ctype, headers=(("content-encoding", wire),))


@pytest.mark.timeout(60)
@pytest.mark.parametrize("encoding", ["gzip", "deflate", "raw-deflate"])
async def test_create_stops_a_compression_bomb(make: BackendMaker, encoding: str) -> None:
    steps = bomb_body(BOMB_MIB, prefix=b'{"choices": [', filler=b" ", encoding=encoding)
    async with raw_server(_bomb_head(encoding=encoding), *steps) as server:
        backend = keyed(make, server.url + "/v1", limits=Limits(max_answer_bytes=MIB))
        (_, error), peak = await _peak_of(_raises(backend.create(ASK)))
    assert isinstance(error, LimitExceeded), error
    assert "passed 1,048,576 bytes" in str(error)
    assert peak < PEAK, f"peak {peak / MIB:.1f} MiB"


@pytest.mark.timeout(60)
async def test_stream_stops_a_compression_bomb_and_keeps_the_text(make: BackendMaker) -> None:
    steps = bomb_body(BOMB_MIB, prefix=HELLO, filler=b": keep-alive\n")
    async with raw_server(_bomb_head(ctype="text/event-stream"), *steps) as server:
        backend = keyed(make, server.url + "/v1", limits=Limits(max_answer_bytes=MIB))
        (events, error), peak = await _peak_of(drain(backend.stream(ASK)))
    assert events == [TextDelta("Hello")]
    assert isinstance(error, LimitExceeded), error
    assert "passed 1,048,576 bytes" in str(error)
    assert peak < PEAK, f"peak {peak / MIB:.1f} MiB"


@pytest.mark.timeout(60)
async def test_an_error_body_bomb_is_cut_at_64_kib(make: BackendMaker) -> None:
    steps = bomb_body(BOMB_MIB, prefix=b'{"error": {"message": "overloaded', filler=b"!")
    async with raw_server(_bomb_head(500), *steps) as server:
        backend = keyed(make, server.url + "/v1")
        (_, error), peak = await _peak_of(drain(backend.stream(ASK)))
    assert isinstance(error, HTTPStatusError) and error.status == 500, error
    assert error.body.startswith('{"error": {"message": "overloaded!!!')
    assert len(error.body) == 64 * 1024
    assert peak < PEAK, f"peak {peak / MIB:.1f} MiB"


async def test_an_unasked_encoding_is_a_protocol_error(make: BackendMaker) -> None:
    async with raw_server(_bomb_head(encoding="br"), chunk(b"\x0b\x02\x80{}\x03")) as server:
        _, error = await _raises(keyed(make, server.url + "/v1").create(ASK))
    assert isinstance(error, ProtocolError) and "'br'" in str(error), error


async def _raises(coro: Any) -> tuple[None, BaseException | None]:
    try:
        await coro
    except Exception as error:
        return None, error
    return None, None


# -- 5. JSON nested too deeply is the server's fault, and earlier text is kept -----------


async def test_a_too_deep_event_keeps_the_text_of_the_same_read(make: BackendMaker) -> None:
    one_read = HELLO + b"data: " + deep_json() + b"\n\n"
    async with raw_server(head(), chunk(one_read), LAST_CHUNK) as server:
        events, error = await drain(keyed(make, server.url + "/v1").stream(ASK))
    assert events == [TextDelta("Hello")]
    assert isinstance(error, ProtocolError), error
    assert "nested too deeply to read" in str(error)


@pytest.mark.parametrize("status", [200, 500])
async def test_a_too_deep_body_is_a_clear_error(make: BackendMaker, status: int) -> None:
    deep = b'{"error": ' * 5000 + b"1" + b"}" * 5000
    async with raw_server(
        head(status, ctype="application/json"), chunk(deep), LAST_CHUNK
    ) as server:
        _, error = await _raises(keyed(make, server.url + "/v1").create(ASK))
    if status == 200:
        assert isinstance(error, ProtocolError) and "nested too deeply" in str(error), error
    else:
        assert isinstance(error, HTTPStatusError) and error.status == 500, error


async def test_a_plain_create_body_is_bounded_too(make: BackendMaker) -> None:
    body = (chunk(b'{"choices": [' + b" " * (64 * 1024)) for _ in range(40))  # 2.5 MiB
    async with raw_server(head(ctype="application/json"), *body, LAST_CHUNK) as server:
        backend = keyed(make, server.url + "/v1", limits=Limits(max_answer_bytes=MIB))
        _, error = await _raises(backend.create(ASK))
    assert isinstance(error, LimitExceeded) and "passed 1,048,576 bytes" in str(error), error


@pytest.mark.timeout(60)
async def test_a_muna_result_bomb_is_bounded(make: BackendMaker) -> None:
    bomb = (_bomb_head(ctype="text/plain"), *bomb_body(BOMB_MIB, filler=b"a"))
    async with (
        raw_server(*bomb) as other,
        raw_server(*_prediction(other.url + "/r", stream=False)) as base,
    ):
        limits = Limits(max_answer_bytes=MIB)
        muna = make(base.url, api="muna", options={"tag": "@a/b"}, limits=limits)
        (_, error), peak = await _peak_of(_raises(muna.create(ASK)))
    assert isinstance(error, LimitExceeded), error
    assert f"The result at {other.url}/r passed 1,048,576 bytes" in str(error)
    assert peak < PEAK, f"peak {peak / MIB:.1f} MiB"
