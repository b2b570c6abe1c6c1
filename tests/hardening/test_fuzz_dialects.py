"""Structured fuzzing of every dialect's parser, complementing ``tests/backends/test_parsers.py``
(which feeds random bytes and random JSON built from a key vocabulary).

What random input rarely produces, and this file does:

* **valid JSON of the wrong shape at the right place**: each dialect's *real* stream
  (recorded from the loopback server) with one leaf of one event replaced by a value of
  another type (list, number, null, bool, nested object, string) or a key deleted — so
  ``choices[0].delta.content`` becomes ``5`` or ``[]``, ``token.special`` becomes ``{}``;
* parsers built through the real factory, ``backend.new_parser(request)``, with the
  backend's own decoder (SSE or NDJSON) and its event limit;
* **chunking invariance** (h11's fuzz next step): the same bytes fed whole and fed in
  random pieces give the same events and the same error type.

Invariant: only tokentide events, or a :class:`~tokentide.errors.TideError`, come out.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.servers.llm_server import LLMServer, serve
from tokentide.backends.base import GenerationRequest
from tokentide.backends.events import Finish, ReasoningDelta, TextDelta
from tokentide.backends.http import HTTPBackend
from tokentide.backends.muna import _Fetch
from tokentide.backends.registry import create_backend
from tokentide.backends.sse import NDJSONSplitter, SSEDecoder
from tokentide.config.model import Profile
from tokentide.errors import TideError

ASK = GenerationRequest.from_prompt("hello")
EXAMPLES = max(50, (settings.default.max_examples if settings.default else 100) // 3)
"""A third of the profile's examples per dialect (333 in CI, 33,333 nightly)."""
ALLOWED = (TextDelta, ReasoningDelta, Finish, _Fetch)
DIALECTS: dict[str, dict[str, Any]] = {
    "openai": {"suffix": "/v1", "model": "m"},
    "openai-completions": {"suffix": "/v1", "model": "m"},
    "tgi": {},
    "anthropic": {"model": "claude-test"},
    "triton-http": {"model": "toy"},
    "substrate": {},
    "muna": {"options": {"tag": "@acme/llm"}},
    "ollama": {"model": "llama3.2"},
}


@pytest.fixture(scope="module")
def recorded() -> Iterator[dict[str, tuple[HTTPBackend, bytes]]]:
    """Each dialect's backend and the bytes of one real stream with reasoning, usage and
    a finish (everything the parsers handle)."""
    out: dict[str, tuple[HTTPBackend, bytes]] = {}
    with serve() as server:
        server_ = server  # for the type checker
        for api, keys in DIALECTS.items():
            keys = dict(keys)
            url = _url(server_, api) + keys.pop("suffix", "")
            backend = create_backend(Profile(name="fuzz", api=api, url=url, **keys), {})
            assert isinstance(backend, HTTPBackend)
            call = backend.stream_call(ASK)
            response = httpx.post(
                backend.url_for(call.path), json=dict(call.body), headers=dict(call.headers)
            )
            assert response.status_code == 200, (api, response.text)
            out[api] = (backend, response.content)
    yield out


def _url(server: LLMServer, api: str) -> str:
    knobs: dict[str, Any] = {"tokens": 3}
    if api in ("openai", "anthropic", "ollama"):
        knobs["reasoning"] = "think"
    return server.url(**knobs)


wrong = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 2**64) | st.floats() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=4), inner, max_size=2)
    ),
    max_leaves=4,
)


def mutate(value: Any, draw: st.DrawFn) -> Any:
    """``value`` with one leaf replaced by a wrong-typed value (or one key deleted)."""
    if isinstance(value, (dict, list)) and value and draw(st.integers(0, 4)) > 0:
        value = copy.copy(value)
        if isinstance(value, dict):
            key = draw(st.sampled_from(sorted(value)))
            if draw(st.integers(0, 5)) == 0:
                del value[key]
                return value
            value[key] = mutate(value[key], draw)
        else:
            index = draw(st.integers(0, len(value) - 1))
            value[index] = mutate(value[index], draw)
        return value
    return draw(wrong)


def items_of(api: str, blob: bytes) -> list[tuple[str, str]]:
    """(event name, data) of each SSE event, or ("", line) for NDJSON."""
    if api == "ollama":
        return [("", line) for line in NDJSONSplitter().feed(blob)]
    return [(e.event, e.data) for e in SSEDecoder().feed(blob)]


def encode(api: str, items: list[tuple[str, str]]) -> bytes:
    if api == "ollama":
        return b"".join(data.encode() + b"\n" for _, data in items)
    parts = []
    for name, data in items:
        head = f"event: {name}\n" if name and name != "message" else ""
        parts.append(f"{head}data: {data}\n\n".encode())
    return b"".join(parts)


@st.composite
def mutated_streams(draw: st.DrawFn, api: str, blob: bytes) -> bytes:
    items = items_of(api, blob)
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, len(items) - 1))
        name, data = items[i]
        try:
            value = json.loads(data)
        except ValueError:
            continue  # [DONE]
        items[i] = (name, json.dumps(mutate(value, draw)))
    return encode(api, items)


def run(backend: HTTPBackend, chunks: list[bytes]) -> tuple[list[Any], type[BaseException] | None]:
    """Feed the chunks through the backend's decoder and parser, as the transport does."""
    parser = backend.new_parser(ASK)
    limit = backend.profile.limits.max_event_bytes
    decoder = SSEDecoder(limit) if backend.framing == "sse" else NDJSONSplitter(limit)
    events: list[Any] = []
    try:
        for piece in chunks:
            for item in decoder.feed(piece):
                events += parser.feed(item)
                if parser.done:
                    return events, None
        for item in decoder.close():
            events += parser.feed(item)
            if parser.done:
                return events, None
        events += parser.end()
    except TideError as error:
        return events, type(error)
    for event in events:
        assert isinstance(event, ALLOWED), event
    return events, None


def split(blob: bytes, cuts: list[int]) -> list[bytes]:
    cuts = sorted(c % (len(blob) + 1) for c in cuts)
    return [blob[a:b] for a, b in zip([0, *cuts], [*cuts, len(blob)], strict=True)]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("api", sorted(DIALECTS))
def test_real_streams_parse_whole_and_in_pieces(
    recorded: dict[str, tuple[HTTPBackend, bytes]], api: str
) -> None:
    """The unmutated recordings parse to text and a Finish, at every chunk size."""
    backend, blob = recorded[api]
    whole, error = run(backend, [blob])
    assert error is None and any(isinstance(e, Finish) for e in whole), (whole, error)
    for size in (1, 2, 3, 7, 64):
        pieces = [blob[i : i + size] for i in range(0, len(blob), size)]
        assert run(backend, pieces) == (whole, None), size


@pytest.mark.timeout(120)
@pytest.mark.parametrize("api", sorted(DIALECTS))
@settings(
    max_examples=EXAMPLES,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data(), cuts=st.lists(st.integers(0, 10_000), max_size=6))
def test_wrong_shapes_give_only_events_or_tide_errors(
    recorded: dict[str, tuple[HTTPBackend, bytes]], api: str, data: st.DataObject, cuts: list[int]
) -> None:
    backend, blob = recorded[api]
    fuzzed = data.draw(mutated_streams(api, blob))
    whole = run(backend, [fuzzed])
    pieces = run(backend, split(fuzzed, cuts))
    assert pieces == whole, "chunking changed the outcome"
