"""The ``substrate`` dialect against the test server's ``/compose`` route."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from tests.servers.llm_server import (
    BackendMaker,
    LLMServer,
    drain,
    read_then_close,
)
from tokentide.backends.base import GenerationRequest, collect
from tokentide.backends.events import Finish, TextDelta
from tokentide.errors import ConfigError, HTTPStatusError, IncompleteStream, ServerError

ASK = GenerationRequest.from_prompt("Tell me about windmills")
TWO_NODES = {
    "nodes": [
        {"id": "a", "node": "ComputeText", "args": {"prompt": "{prompt}"}},
        {"id": "b", "node": "ComputeText", "args": {"prompt": "Summarise: {prompt}"}},
    ],
    "edges": [],
}


@pytest.fixture
async def make() -> AsyncIterator[BackendMaker]:
    maker = BackendMaker("substrate")
    yield maker
    await maker.aclose()


async def test_default_one_node_graph(server: LLMServer, make: BackendMaker) -> None:
    backend = make(
        server.url(tokens=2, tag="basic"),
        api_key_env="SUBSTRATE_API_KEY",
        env={"SUBSTRATE_API_KEY": "sub-key"},
        max_tokens=50,
    )
    events, error = await drain(backend.stream(ASK))
    assert error is None
    assert events == [
        TextDelta("w0", node_id="ComputeText_1"),
        TextDelta(" w1", node_id="ComputeText_1"),
        Finish(),
    ]
    record = server.record("basic")
    assert record.path == "/compose"
    assert record.headers["accept"] == "text/event-stream"
    assert record.headers["x-substrate-streaming"] == "1"
    assert record.headers["authorization"] == "Bearer sub-key"
    (node,) = record.body["dag"]["nodes"]
    assert node["node"] == "ComputeText"
    assert node["args"] == {"prompt": "Tell me about windmills", "max_tokens": 50}


async def test_all_nodes_by_default_with_a_graph(server: LLMServer, make: BackendMaker) -> None:
    backend = make(server.url(tokens=2, echo=0, tag="graph"), options={"graph": TWO_NODES})
    events, error = await drain(backend.stream(ASK))
    assert error is None
    texts = [(e.node_id, e.text) for e in events if isinstance(e, TextDelta)]
    assert texts == [("a", "w0"), ("a", " w1"), ("b", "(b)"), ("b", " w0"), ("b", " w1")]
    nodes = server.record("graph").body["dag"]["nodes"]
    assert nodes[1]["args"]["prompt"] == "Summarise: Tell me about windmills"


async def test_node_option_selects_one_node(server: LLMServer, make: BackendMaker) -> None:
    backend = make(server.url(tokens=2), options={"graph": json.dumps(TWO_NODES), "node": "b"})
    reply = await collect(backend.stream(ASK))
    assert reply.text == "(b) w0 w1"


async def test_nodeId_spelling_and_choices_shape(server: LLMServer, make: BackendMaker) -> None:
    backend = make(server.url(tokens=3, key="nodeId", shape="choices"))
    events, error = await drain(backend.stream(ASK))
    assert error is None
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["w0", " w1", " w2"]


async def test_node_result_carries_the_unstreamed_rest(
    server: LLMServer, make: BackendMaker
) -> None:
    events, error = await drain(make(server.url(tokens=4, delta_upto=1)).stream(ASK))
    assert error is None
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["w0", " w1 w2 w3"]


async def test_node_error_stops_with_partial_text(server: LLMServer, make: BackendMaker) -> None:
    backend = make(
        server.url(tokens=4, error_at=2, error_kind="dependency_error", error_message="upstream"),
        options={"graph": TWO_NODES},
    )
    events, error = await drain(backend.stream(ASK))
    assert [e.text for e in events] == ["w0", " w1"]
    assert isinstance(error, ServerError)
    assert error.kind == "dependency_error"
    assert "node a failed" in str(error)
    assert "upstream" in str(error)


async def test_error_on_second_node_even_when_server_continues(
    server: LLMServer, make: BackendMaker
) -> None:
    backend = make(
        server.url(tokens=1, error_at=0, error_node=1, continue_after_error=1),
        options={"graph": TWO_NODES},
    )
    events, error = await drain(backend.stream(ASK))
    assert [e.text for e in events] == ["w0"]
    assert isinstance(error, ServerError)
    assert "node b failed" in str(error)


async def test_missing_graph_result_is_incomplete(server: LLMServer, make: BackendMaker) -> None:
    _, error = await drain(make(server.url(tokens=2, truncate=1)).stream(ASK))
    assert isinstance(error, IncompleteStream)


async def test_http_error_is_not_hidden(server: LLMServer, make: BackendMaker) -> None:
    _, error = await drain(make(server.url(status=401, error_message="bad key")).stream(ASK))
    assert isinstance(error, HTTPStatusError)
    assert error.status == 401
    assert "bad key" in str(error)


async def test_create_is_the_json_request(server: LLMServer, make: BackendMaker) -> None:
    backend = make(server.url(tokens=3, tag="create"))
    reply = await backend.create(ASK)
    assert reply.text == "w0 w1 w2"
    assert server.record("create").headers["accept"] == "application/json"
    graph = make(server.url(tokens=1), options={"graph": TWO_NODES, "node": "b"})
    assert (await graph.create(ASK)).text == "(b) w0"


def test_bad_graph_option(make: BackendMaker) -> None:
    with pytest.raises(ConfigError):
        make("http://127.0.0.1:9", options={"graph": "{not json"})
    with pytest.raises(ConfigError):
        make("http://127.0.0.1:9", options={"graph": 3})


async def test_cancel_closes_the_connection(server: LLMServer, make: BackendMaker) -> None:
    backend = make(server.url(tokens=50, stall_at=2, tag="cancel"))
    events, lag = await read_then_close(server, backend.stream(ASK), "cancel")
    assert [e.text for e in events] == ["w0", " w1"]
    assert lag < 0.1
