"""The SSE decoder against the WHATWG rules and protocols.md §1.4's test vectors."""

from __future__ import annotations

import json
from typing import Literal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tokentide.backends.sse import NDJSONSplitter, SSEDecoder, SSEEvent
from tokentide.errors import LimitExceeded


def decode(*chunks: bytes) -> list[SSEEvent]:
    decoder = SSEDecoder()
    events: list[SSEEvent] = []
    for chunk in chunks:
        events.extend(decoder.feed(chunk))
    events.extend(decoder.close())
    return events


def datas(*chunks: bytes) -> list[str]:
    return [event.data for event in decode(*chunks)]


@pytest.mark.parametrize(
    ("chunks", "expected"),
    [
        ((b"data: a\n\n",), ["a"]),
        ((b"data:a\r\rdata: b\r\n\r\n",), ["a", "b"]),
        ((b"data: a\r", b"\n\r\n"), ["a"]),
        ((b"\xef\xbb\xbfdata: a\n\n",), ["a"]),
        ((b"\xef", b"\xbb", b"\xbfdata: a\n\n"), ["a"]),
        ((b"data: a\ndata:\ndata: b\n\n",), ["a\n\nb"]),
        ((b"data\n\n",), [""]),
        ((b"event: ping\n\n",), []),
        ((b"id: 7\ndata: x\n\n: keepalive\n\n\n",), ["x"]),
        ((b"data: x\n",), []),
        ((b"data:  x\n\n",), [" x"]),
        ((b"retry: 1x\ndata: a\n\n",), ["a"]),
        (('data: {"t":"a\u2028b"}\n\n'.encode(),), ['{"t":"a\u2028b"}']),
        (('data: {"t":"a\u0085b"}\n\n'.encode(),), ['{"t":"a\u0085b"}']),
        ((b'error: {"code":400}\n\ndata: [DONE]\n\n',), ["[DONE]"]),
        ((b": only a comment\n\n",), []),
        ((b"data: \xff\xfe bad\n\n",), ["\ufffd\ufffd bad"]),
    ],
)
def test_vectors(chunks: tuple[bytes, ...], expected: list[str]) -> None:
    assert datas(*chunks) == expected


def test_bom_only_stripped_once() -> None:
    assert datas(b"\xef\xbb\xbf\xef\xbb\xbfdata: a\n\n") == []  # second BOM makes an unknown field


def test_event_type_id_and_retry() -> None:
    decoder = SSEDecoder()
    events = decoder.feed(b"event: add\nid: 42\nretry: 1500\ndata: x\n\ndata: y\n\n")
    assert events == [SSEEvent("x", "add", "42", 1500), SSEEvent("y", "message", "42", 1500)]
    decoder.feed(b"id\ndata: z\n\n")
    assert decoder.feed(b"id: a\x00b\ndata: w\n\n")[0].id == ""  # NUL: id ignored, empty persists


def test_retry_requires_ascii_digits() -> None:
    decoder = SSEDecoder()
    for value in (b"+5", b" 5", b"1_0", "١".encode()):
        decoder.feed(b"retry: " + value + b"\ndata: a\n\n")
    assert decoder.retry is None


def test_comments_are_counted_not_dispatched() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b":\n\n: ping\n\n:OPENROUTER PROCESSING\n\n") == []
    assert decoder.comments == 3


def test_error_field_is_recorded() -> None:
    decoder = SSEDecoder()
    decoder.feed(b'error: {"code":400,"message":"too long"}\n\n')
    assert decoder.error_fields == ['{"code":400,"message":"too long"}']


def test_multibyte_split_at_every_byte() -> None:
    payload = 'data: {"t":"é世😀\u2028x"}\n\n'.encode()
    for cut in range(1, len(payload)):
        assert datas(payload[:cut], payload[cut:]) == ['{"t":"é世😀\u2028x"}']


def test_line_limit() -> None:
    decoder = SSEDecoder(max_event_bytes=100)
    with pytest.raises(LimitExceeded):
        decoder.feed(b"data: " + b"x" * 200)


def test_event_limit_across_lines() -> None:
    decoder = SSEDecoder(max_event_bytes=100)
    with pytest.raises(LimitExceeded):
        for _ in range(20):
            decoder.feed(b"data: " + b"x" * 20 + b"\n")


def _stream(texts: list[str], line_end: bytes) -> bytes:
    out = bytearray(b"\xef\xbb\xbf")
    for index, text in enumerate(texts):
        if index % 3 == 0:
            out += b": keep-alive" + line_end + line_end
        if index % 4 == 0:
            out += b"id: " + str(index).encode() + line_end
        out += (
            b"data: " + json.dumps({"t": text}, ensure_ascii=False).encode() + line_end + line_end
        )
    return bytes(out)


NO_SURROGATES: list[Literal["Cs"]] = ["Cs"]
texts_strategy = st.lists(
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=NO_SURROGATES), max_size=12),
    min_size=1,
    max_size=12,
)


@given(
    texts=texts_strategy,
    line_end=st.sampled_from([b"\n", b"\r\n", b"\r"]),
    cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=20),
)
def test_every_chunking_gives_the_same_events(
    texts: list[str], line_end: bytes, cuts: list[int]
) -> None:
    data = _stream(texts, line_end)
    points = sorted({c % (len(data) + 1) for c in cuts})
    chunks = [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]
    assert [json.loads(e.data)["t"] for e in decode(*chunks)] == texts
    assert [json.loads(e.data)["t"] for e in decode(data)] == texts


def test_one_byte_chunks() -> None:
    texts = ["é", "世界", "😀", "\u2028", "a\rb", "\\", '"']
    data = _stream(texts, b"\r\n")
    assert [
        json.loads(e.data)["t"] for e in decode(*[data[i : i + 1] for i in range(len(data))])
    ] == texts


@given(st.binary(max_size=2000), st.lists(st.integers(min_value=0, max_value=2000), max_size=10))
def test_any_bytes_give_events_or_limit_errors(data: bytes, cuts: list[int]) -> None:
    points = sorted({c % (len(data) + 1) for c in cuts})
    decoder = SSEDecoder(max_event_bytes=1000)
    try:
        for a, b in zip([0, *points], [*points, len(data)], strict=True):
            for event in decoder.feed(data[a:b]):
                assert isinstance(event.data, str)
    except LimitExceeded:
        pass


def test_ndjson_splits_on_newline_only() -> None:
    splitter = NDJSONSplitter()
    line = '{"content":"a\u0085b\u2028c"}'.encode()
    assert splitter.feed(line[:5]) == []
    assert splitter.feed(line[5:] + b"\n\n" + b'{"done":true}') == ['{"content":"a\u0085b\u2028c"}']
    assert splitter.close() == ['{"done":true}']
