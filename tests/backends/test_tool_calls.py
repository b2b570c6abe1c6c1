"""Tool calling across the dialects (issue 14 item 1): which backends carry tools
(:func:`~tokentide.backends.base.calls_tools`), and the ids, arguments and turns every
dialect's request writes from the same conversation.  The per-dialect wire tests are
``test_tool_calls_openai.py``, ``..._anthropic.py`` and ``..._ollama.py``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.servers.llm_server import BackendMaker, LLMServer
from tokentide.backends.base import Message, calls_tools
from tokentide.backends.events import ToolCallRequested
from tokentide.backends.tool_calls import (
    FragmentAssembler,
    anthropic_messages,
    arguments_object,
    call_ids,
    finish_reason,
    ollama_messages,
    openai_messages,
)

ECHO = Path(__file__).parents[2] / "examples" / "predictors" / "echo.py"


@pytest.fixture
async def make() -> AsyncIterator[BackendMaker]:
    maker = BackendMaker("openai")
    yield maker
    await maker.aclose()


@pytest.mark.parametrize(
    ("api", "profile", "expected"),
    [
        ("openai", {}, True),
        ("anthropic", {}, True),
        ("ollama", {}, True),
        ("openai-completions", {}, False),
        ("tgi", {}, False),
        ("triton-http", {"model": "toy"}, False),
        ("substrate", {}, False),
        ("muna", {"model": "@tide/toy"}, False),
    ],
)
def test_which_http_dialects_carry_tools(
    server: LLMServer, make: BackendMaker, api: str, profile: dict[str, object], expected: bool
) -> None:
    """vLLM, llama.cpp server and TGI's /v1 are ``openai`` profiles, so they carry them."""
    assert calls_tools(make(server.url(), api=api, **profile)) is expected


def test_in_process_backends_do_not_carry_tools() -> None:
    """llamacpp: llama-cpp-python's function-calling handler drops tool results from its
    prompt (docs/backends-local.md); a local predictor has no tool protocol."""
    from tokentide.backends.llamacpp import LlamaCppBackend
    from tokentide.backends.local import from_profile
    from tokentide.config.model import Profile

    assert calls_tools(LlamaCppBackend(Path("unused.gguf"))) is False
    local = from_profile(Profile("t", "local", options={"target": f"{ECHO}:generate"}), {})
    assert calls_tools(local) is False
    assert calls_tools(object()) is False


WEATHER = ToolCallRequested("get_weather", '{"city": "Paris"}', "call_a")
TIME = ToolCallRequested("get_time", '{"tz": "CET"}', "call_b")

CONVERSATION = (
    Message("system", "Be brief."),
    Message("user", "Weather and time in Paris?"),
    Message("assistant", "Looking.", tool_calls=(WEATHER, TIME)),
    Message("tool", "18 °C", tool_call_id="call_a", name="get_weather"),
    Message("tool", "no such zone", tool_call_id="call_b", name="get_time", is_error=True),
    Message("user", "Thanks. And tomorrow?"),
)


def test_results_are_matched_to_calls_by_id_then_name_then_order() -> None:
    nameless = ToolCallRequested("get_weather", "{}")  # Ollama sends no ids
    messages = (
        Message("user", "q"),
        Message("assistant", "", tool_calls=(nameless, ToolCallRequested("get_time", ""))),
        Message("tool", "later", name="get_time"),  # by name, out of order
        Message("tool", "first"),  # neither: the one left
    )
    assert call_ids(messages) == [None, ("call_1_0", "call_1_1"), "call_1_1", "call_1_0"]
    assert call_ids(CONVERSATION)[2:5] == [("call_a", "call_b"), "call_a", "call_b"]


def test_arguments_that_are_not_a_json_object_go_back_as_an_empty_object() -> None:
    assert arguments_object('{"a": [1, 2]}') == {"a": [1, 2]}
    for bad in ('{"city": "Par', "", "[1, 2]", '"text"', "null", "{" * 100_000):
        assert arguments_object(bad) == {}
    broken = ToolCallRequested("f", '{"city": "Par', "c1")
    messages = [Message("user", "q"), Message("assistant", "", tool_calls=(broken,))]
    assert openai_messages(messages)[1]["tool_calls"][0]["function"]["arguments"] == "{}"
    assert anthropic_messages(messages)[1]["content"][0]["input"] == {}
    assert ollama_messages(messages)[1]["tool_calls"][0]["function"]["arguments"] == {}


def test_anthropic_merges_a_turns_results_and_the_next_prompt_into_one_user_message() -> None:
    encoded = anthropic_messages(CONVERSATION)
    assert [m["role"] for m in encoded] == ["user", "assistant", "user"]
    assert encoded[1]["content"] == [
        {"type": "text", "text": "Looking."},
        {"type": "tool_use", "id": "call_a", "name": "get_weather", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "call_b", "name": "get_time", "input": {"tz": "CET"}},
    ]
    assert encoded[2]["content"] == [
        {"type": "tool_result", "tool_use_id": "call_a", "content": "18 °C", "is_error": False},
        {
            "type": "tool_result",
            "tool_use_id": "call_b",
            "content": "no such zone",
            "is_error": True,
        },
        {"type": "text", "text": "Thanks. And tomorrow?"},
    ]


def test_a_new_id_at_the_same_index_is_a_new_call() -> None:
    """Servers that number every parallel call 0 still give two calls."""
    tools = FragmentAssembler()
    tools.add(0, id="a", name="f", arguments='{"x"')
    tools.add(0, id="a", arguments=": 1}")  # TGI repeats the id
    tools.add(0, id="b", name="g", arguments="{}")
    assert tools.flush() == [
        ToolCallRequested("f", '{"x": 1}', "a"),
        ToolCallRequested("g", "{}", "b"),
    ]


def test_answers_with_calls_end_with_tool_calls() -> None:
    assert finish_reason("stop", True) == "tool_calls"
    assert finish_reason(None, True) == "tool_calls"
    assert finish_reason("length", True) == "length"  # cut short: say so
    assert finish_reason("stop", False) == "stop"


@pytest.mark.parametrize("api", ["openai", "anthropic", "ollama"])
async def test_the_requests_tools_win_over_a_profiles_params(
    server: LLMServer, make: BackendMaker, api: str
) -> None:
    """A profile's ``params`` may declare tools for a server; a request that offers its
    own sends those, the ones that will be run.  Without any, the params' are sent."""
    from tokentide.backends.base import GenerationRequest
    from tokentide.backends.tool_spec import ToolSpec

    params = {"tools": ["from the profile"]}
    backend = make(
        server.url(tag=f"params-{api}") + ("/v1" if api == "openai" else ""), api=api, params=params
    )
    await backend.create(GenerationRequest.from_prompt("q", tools=(ToolSpec("mine"),)))
    sent = server.record(f"params-{api}").body["tools"]
    assert len(sent) == 1 and "mine" in str(sent)
    await backend.create(GenerationRequest.from_prompt("q"))
    assert server.last().body["tools"] == ["from the profile"]


def test_an_empty_anthropic_result_has_no_content() -> None:
    messages = (
        Message("user", "q"),
        Message("assistant", "", tool_calls=(ToolCallRequested("f", "{}", "t1"),)),
        Message("tool", "", tool_call_id="t1", name="f"),
    )
    assert anthropic_messages(messages)[2]["content"] == [
        {"type": "tool_result", "tool_use_id": "t1", "is_error": False}
    ]
