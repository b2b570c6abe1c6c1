"""Property tests: whatever bytes a server sends, every dialect's parser (behind the SSE
decoder or the NDJSON splitter) produces only events or tokentide errors, never another
exception (a KeyError or TypeError would crash the UI instead of explaining)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tokentide.backends._cumulative import Yields
from tokentide.backends.anthropic import AnthropicParser
from tokentide.backends.events import Finish, ReasoningDelta, TextDelta
from tokentide.backends.http import StreamParser
from tokentide.backends.muna import MunaParser, _Fetch
from tokentide.backends.ollama import OllamaParser
from tokentide.backends.openai import _OpenAIParser
from tokentide.backends.sse import NDJSONSplitter, SSEDecoder
from tokentide.backends.stream_guard import StreamGuard, Wording
from tokentide.backends.substrate import SubstrateParser
from tokentide.backends.tgi import TGIParser
from tokentide.backends.triton_http import TritonHTTPParser
from tokentide.config.model import Limits
from tokentide.errors import TideError

S = "http://127.0.0.1:1"


def guard(style: Yields) -> StreamGuard:
    return StreamGuard(Limits(), style, wording=Wording(S, S))


SSE_PARSERS: dict[str, Callable[[], StreamParser]] = {
    "openai-chat": lambda: _OpenAIParser(S, chat=True),
    "openai-completions": lambda: _OpenAIParser(S, chat=False),
    "tgi": lambda: TGIParser(S),
    "anthropic": lambda: AnthropicParser(S),
    "triton-delta": lambda: TritonHTTPParser(S, "text_output", guard("delta")),
    "triton-cumulative": lambda: TritonHTTPParser(S, "text_output", guard("cumulative")),
    "substrate-all": lambda: SubstrateParser(S, None),
    "substrate-node": lambda: SubstrateParser(S, "a"),
    "muna-cumulative": lambda: MunaParser(S, guard("cumulative")),
    "muna-auto": lambda: MunaParser(S, guard("auto")),
}

KEYS = [
    "error", "error_type", "token", "text", "id", "logprob", "special", "generated_text",
    "details", "finish_reason", "seed", "input_length", "generated_tokens", "type", "delta",
    "message", "usage", "stop_reason", "object", "node_id", "nodeId", "data", "choices",
    "item", "index", "results", "content", "thinking", "done", "done_reason", "text_output",
    "input_tokens", "output_tokens", "prompt_eval_count", "eval_count", "reasoning_content",
    "logprobs",
]  # fmt: skip
WORDS = [
    "node.delta", "node.result", "node.error", "graph.result", "text_delta",
    "thinking_delta", "message_start", "message_delta", "message_stop", "error",
    "content_block_delta", "eos_token", "length", "data:text/plain;base64,aGk=",
    "data:,a%20b", "data:;base64,!!", "http://127.0.0.1:1/blob/0", "a", "[DONE]", "",
]  # fmt: skip

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.sampled_from(WORDS)
    | st.text(max_size=8)
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=3), inner, max_size=5)
    ),
    max_leaves=20,
)
event_names = st.sampled_from(
    ["", "message", "error", "ping", "prediction", "message_stop", "content_block_delta"]
)


@st.composite
def sse_streams(draw: st.DrawFn) -> list[bytes]:
    """Plausible SSE events with random JSON (reaching deep into the parsers), random
    bytes, and random chunking."""
    parts: list[bytes] = []
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.integers(0, 3))
        if kind == 0:
            parts.append(draw(st.binary(max_size=40)))
        else:
            name = draw(event_names)
            data = json.dumps(draw(json_values)) if kind < 3 else draw(st.sampled_from(WORDS))
            head = f"event: {name}\n" if name else ""
            parts.append(f"{head}data: {data}\n\n".encode())
    blob = b"".join(parts)
    cuts = sorted(draw(st.lists(st.integers(0, len(blob)), max_size=5)))
    return [blob[a:b] for a, b in zip([0, *cuts], [*cuts, len(blob)], strict=True)]


def run(parser: StreamParser, items_of: Callable[[bytes], list[Any]], chunks: list[bytes]) -> None:
    allowed = (TextDelta, ReasoningDelta, Finish, _Fetch)
    try:
        for chunk in chunks:
            for item in items_of(chunk):
                for event in parser.feed(item):
                    assert isinstance(event, allowed), event
                if parser.done:
                    return
        for event in parser.end():
            assert isinstance(event, allowed), event
    except TideError:
        pass


@pytest.mark.parametrize("name", sorted(SSE_PARSERS))
@given(chunks=sse_streams())
def test_sse_parsers_raise_only_tide_errors(name: str, chunks: list[bytes]) -> None:
    decoder = SSEDecoder(4096)
    run(SSE_PARSERS[name](), decoder.feed, chunks)


@pytest.mark.parametrize("name", ["openai-chat", "tgi", "anthropic", "substrate-all"])
@given(chunks=st.lists(st.binary(max_size=64), max_size=6))
def test_sse_parsers_on_raw_bytes(name: str, chunks: list[bytes]) -> None:
    decoder = SSEDecoder(4096)
    run(SSE_PARSERS[name](), decoder.feed, chunks)


@given(values=st.lists(json_values | st.text(max_size=10), max_size=6), data=st.data())
def test_ollama_parser_raises_only_tide_errors(values: list[Any], data: st.DataObject) -> None:
    blob = b"".join(
        (json.dumps(v) if not isinstance(v, str) else v).encode() + b"\n" for v in values
    )
    cuts = sorted(data.draw(st.lists(st.integers(0, len(blob)), max_size=4)))
    chunks = [blob[a:b] for a, b in zip([0, *cuts], [*cuts, len(blob)], strict=True)]
    splitter = NDJSONSplitter(4096)
    run(OllamaParser(S), splitter.feed, chunks)
