"""Tool calling against a real server: llama-cpp-python's OpenAI-compatible server with
SmolLM2-135M-Instruct and ``--chat_format chatml-function-calling`` (issue 14 item 1).

A 135M model does not decide to call a tool by itself, so the request names the tool
(:class:`~tokentide.backends.tool_spec.ForcedTool`; this handler takes no
``"required"``), which constrains decoding to that tool's JSON Schema: the call is
well formed by construction, streamed and not.  The result then goes back with
``tool_choice = "none"`` (the handler cannot stream an ``"auto"`` answer) and an answer
arrives.  Skipped, as the other real-server tests are, when llama-cpp-python's server
extra or the model is not installed.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator

import pytest

from tests.real.llamacpp_server import serve_llamacpp
from tests.servers.llm_server import drain
from tokentide.backends.base import GenerationRequest, Message, calls_tools
from tokentide.backends.events import Finish, TextDelta, ToolCallRequested
from tokentide.backends.openai import OpenAIChatBackend
from tokentide.backends.tool_spec import ForcedTool, ToolSpec
from tokentide.config.model import Profile

pytestmark = pytest.mark.real_server

WEATHER = ToolSpec(
    "get_weather",
    "The current weather in a city.",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
ASK = GenerationRequest.from_prompt(
    "What is the weather in Paris?",
    tools=(WEATHER,),
    tool_choice=ForcedTool("get_weather"),
    max_tokens=48,
    temperature=0.0,
    seed=1,
)


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    with serve_llamacpp(options=("--chat_format", "chatml-function-calling")) as url:
        yield url


@pytest.fixture
async def backend(base_url: str) -> AsyncIterator[OpenAIChatBackend]:
    chat = OpenAIChatBackend(Profile(name="llamacpp", api="openai", url=base_url), {})
    yield chat
    await chat.aclose()


def well_formed(call: ToolCallRequested) -> None:
    assert call.name == "get_weather"
    assert call.id  # the server's own
    arguments = json.loads(call.arguments)
    assert isinstance(arguments, dict) and isinstance(arguments["city"], str)


async def test_a_forced_call_arrives_whole_streamed_and_not(backend: OpenAIChatBackend) -> None:
    assert calls_tools(backend)
    events, error = await drain(backend.stream(ASK))
    assert error is None
    streamed = [e for e in events if isinstance(e, ToolCallRequested)]
    assert len(streamed) == 1  # not twice: the server also sends it as function_call
    well_formed(streamed[0])
    assert isinstance(events[-1], Finish) and events[-1].reason == "tool_calls"

    reply = await backend.create(ASK)
    assert len(reply.tool_calls) == 1 and reply.finish_reason == "tool_calls"
    well_formed(reply.tool_calls[0])
    # The same greedy call either way (ids differ: one per completion).
    assert reply.tool_calls[0].name == streamed[0].name
    assert json.loads(reply.tool_calls[0].arguments) == json.loads(streamed[0].arguments)


async def test_the_result_sent_back_yields_an_answer(backend: OpenAIChatBackend) -> None:
    reply = await backend.create(ASK)
    (call,) = reply.tool_calls
    follow_up = GenerationRequest(
        messages=(
            *ASK.messages,
            Message("assistant", reply.text, tool_calls=(call,)),
            Message("tool", "18 °C and sunny", tool_call_id=call.id, name=call.name),
        ),
        tools=(WEATHER,),
        tool_choice="none",
        max_tokens=24,
        temperature=0.0,
        seed=1,
    )
    events, error = await drain(backend.stream(follow_up))
    assert error is None  # the server took the call and the result
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert text.strip()
    assert not [e for e in events if isinstance(e, ToolCallRequested)]
    assert isinstance(events[-1], Finish) and events[-1].reason in ("stop", "length")
    answer = await backend.create(follow_up)
    assert answer.text.strip() and not answer.tool_calls
