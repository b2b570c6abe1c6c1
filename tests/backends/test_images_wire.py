"""Pictures on the wire (issue 15 item 3), against the loopback server's recorded bodies:
OpenAI chat ``image_url`` parts with ``data:`` URLs, Anthropic base64 ``image`` blocks
before the text, Ollama ``images``; a request without pictures is byte for byte what it
was; every text-only dialect refuses pictures before anything is sent."""

from __future__ import annotations

import base64
import importlib.util
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.servers.llm_server import BackendMaker, LLMServer, drain
from tokentide.backends.base import GenerationRequest, Message, prompt_text, takes_images
from tokentide.backends.events import Finish, TextDelta, ToolCallRequested
from tokentide.backends.local import from_profile as local_from_profile
from tokentide.backends.media import ImageData, ImagesRefused
from tokentide.config.model import Profile
from tokentide.errors import BackendError, UsageError
from tokentide.generation import Generation, State

# A real 1x1 PNG and a few JPEG-ish bytes: the server checks the base64, not the format.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
JPEG = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 3
CAT = ImageData("image/png", PNG, "cat.png")
DOG = ImageData("image/jpeg", JPEG, "dog.jpg")


def ask(text: str, *images: ImageData) -> GenerationRequest:
    return GenerationRequest(
        messages=(Message("system", "Be brief."), Message("user", text, images=images))
    )


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def httpx_json(body: Any) -> bytes:
    """A body as httpx's ``json=`` writes it (compact, UTF-8): what "byte for byte" means."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


@pytest.fixture
async def make() -> AsyncIterator[BackendMaker]:
    maker = BackendMaker("openai")
    yield maker
    await maker.aclose()


async def answer(backend: Any, request: GenerationRequest, mode: str) -> str:
    if mode == "create":
        return str((await backend.create(request)).text)
    events, error = await drain(backend.stream(request))
    assert error is None, error
    assert isinstance(events[-1], Finish)
    return "".join(e.text for e in events if isinstance(e, TextDelta))


SAW_BOTH = f"saw 2: image/png {len(PNG)}, image/jpeg {len(JPEG)}"


# -- the capability --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("api", "options", "expected"),
    [
        ("openai", {}, True),
        ("anthropic", {}, True),
        ("ollama", {}, True),
        ("openai-completions", {}, False),
        ("tgi", {}, False),
        ("triton-http", {}, False),
        ("substrate", {}, False),
        ("muna", {"tag": "@acme/llm"}, False),
    ],
)
async def test_capability_per_api(
    server: LLMServer, make: BackendMaker, api: str, options: dict[str, Any], expected: bool
) -> None:
    backend = make(server.url(), api=api, model="m", options=options)
    assert takes_images(backend) is expected


def predictor(tmp_path: Path) -> Path:
    path = tmp_path / "echo_predictor.py"
    path.write_text("def predict(prompt):\n    return 'seen: ' + prompt\n")
    return path


async def test_local_backend_does_not_take_images_and_refuses(tmp_path: Path) -> None:
    options = {"target": f"{predictor(tmp_path)}:predict"}
    backend = local_from_profile(Profile("fn", "local", options=options), {})
    assert takes_images(backend) is False
    assert (await backend.create(ask("hi"))).text == "seen: hi"
    events, error = await drain(backend.stream(ask("what is this?", CAT)))
    assert events == []
    assert isinstance(error, ImagesRefused)
    assert "Profile 'fn' (api 'local') cannot take pictures (1 picture: cat.png)" in str(error)
    with pytest.raises(ImagesRefused):
        await backend.create(ask("what is this?", CAT))


@pytest.mark.skipif(
    importlib.util.find_spec("llama_cpp") is None, reason="llama-cpp-python not installed"
)
async def test_llamacpp_in_process_does_not_take_images_and_refuses() -> None:
    from tokentide.backends.llamacpp import from_profile

    try:
        backend = from_profile(Profile("small", "llamacpp"), {})
    except Exception as missing:  # no default model in this environment
        pytest.skip(f"no llamacpp model: {missing}")
    assert takes_images(backend) is False
    # refused before the model is loaded: nothing is sent, nothing is loaded
    events, error = await drain(backend.stream(ask("what is this?", CAT)))
    assert events == [] and isinstance(error, ImagesRefused)
    assert "Profile 'small' (api 'llamacpp') cannot take pictures" in str(error)
    await backend.aclose()


# -- OpenAI chat -------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["stream", "create"])
async def test_openai_chat_sends_image_url_parts(
    server: LLMServer, make: BackendMaker, mode: str
) -> None:
    tag = f"oai-img-{mode}"
    backend = make(server.url(see=1, tag=tag), model="vision")
    assert await answer(backend, ask("what are these?", CAT, DOG), mode) == SAW_BOTH
    messages = server.record(tag).body["messages"]
    assert messages == [
        {"role": "system", "content": "Be brief."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "what are these?"},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{b64(PNG)}"}},
                {"type": "image_url", "image_url": {"url": f"data:image/jpeg;base64,{b64(JPEG)}"}},
            ],
        },
    ]


async def test_openai_chat_picture_without_text_has_no_text_part(
    server: LLMServer, make: BackendMaker
) -> None:
    backend = make(server.url(see=1, tag="oai-img-only"), model="vision")
    assert await answer(backend, ask("", CAT), "stream") == f"saw 1: image/png {len(PNG)}"
    content = server.record("oai-img-only").body["messages"][1]["content"]
    assert content == [
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{b64(PNG)}"}}
    ]


async def test_openai_chat_earlier_turns_keep_their_pictures(
    server: LLMServer, make: BackendMaker
) -> None:
    request = GenerationRequest(
        messages=(
            Message("user", "look", images=(CAT,)),
            Message("assistant", "A cat."),
            Message("user", "and now?"),
        )
    )
    backend = make(server.url(see=1, tag="oai-img-history"), model="vision")
    assert await answer(backend, request, "create") == f"saw 1: image/png {len(PNG)}"
    messages = server.record("oai-img-history").body["messages"]
    assert isinstance(messages[0]["content"], list)
    assert messages[1:] == [
        {"role": "assistant", "content": "A cat."},
        {"role": "user", "content": "and now?"},
    ]


# -- Anthropic ---------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["stream", "create"])
async def test_anthropic_sends_base64_image_blocks_before_the_text(
    server: LLMServer, make: BackendMaker, mode: str
) -> None:
    tag = f"ant-img-{mode}"
    backend = make(server.url(see=1, tag=tag), api="anthropic", model="claude")
    assert await answer(backend, ask("what are these?", CAT, DOG), mode) == SAW_BOTH
    body = server.record(tag).body
    assert body["system"] == "Be brief."
    assert body["messages"] == [
        {
            "role": "user",
            "content": [
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/png", "data": b64(PNG)},
                },
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/jpeg", "data": b64(JPEG)},
                },
                {"type": "text", "text": "what are these?"},
            ],
        }
    ]


async def test_anthropic_pictures_after_tool_results_join_their_turn(
    server: LLMServer, make: BackendMaker
) -> None:
    call = ToolCallRequested("camera", "{}", "toolu_1")
    request = GenerationRequest(
        messages=(
            Message("user", "take a picture"),
            Message("assistant", "", tool_calls=(call,)),
            Message("tool", "taken", tool_call_id="toolu_1", name="camera"),
            Message("user", "here it is", images=(CAT,)),
        )
    )
    backend = make(server.url(see=1, tag="ant-img-tools"), api="anthropic", model="claude")
    assert await answer(backend, request, "create") == f"saw 1: image/png {len(PNG)}"
    last = server.record("ant-img-tools").body["messages"][-1]
    assert last["role"] == "user"
    assert [block["type"] for block in last["content"]] == ["tool_result", "image", "text"]


# -- Ollama ------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["stream", "create"])
async def test_ollama_sends_images_beside_content(
    server: LLMServer, make: BackendMaker, mode: str
) -> None:
    tag = f"oll-img-{mode}"
    backend = make(server.url(see=1, tag=tag), api="ollama", model="llava")
    assert await answer(backend, ask("what are these?", CAT, DOG), mode) == (
        f"saw 2: ? {len(PNG)}, ? {len(JPEG)}"  # Ollama takes no media type
    )
    assert server.record(tag).body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "what are these?", "images": [b64(PNG), b64(JPEG)]},
    ]


# -- large pictures, and none --------------------------------------------------------------


@pytest.mark.parametrize("api", ["openai", "anthropic", "ollama"])
async def test_a_3_mb_picture_goes_through(server: LLMServer, make: BackendMaker, api: str) -> None:
    big = ImageData("image/webp", os.urandom(3 * 1024 * 1024), "big.webp")
    tag = f"big-{api}"
    backend = make(server.url(see=1, tag=tag), api=api, model="m")
    text = await answer(backend, ask("big", big), "stream")
    assert text.endswith(f" {len(big.data)}")
    assert server.record(tag).images[0][1] == big.data


@pytest.mark.parametrize(
    ("api", "expected"),
    [
        (
            "openai",
            {
                "model": "m",
                "messages": [
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": "hi"},
                ],
                "stream": True,
                "stream_options": {"include_usage": True},
            },
        ),
        (
            "anthropic",
            {
                "model": "m",
                "max_tokens": 1024,
                "system": "Be brief.",
                "messages": [{"role": "user", "content": "hi"}],
                "stream": True,
            },
        ),
        (
            "ollama",
            {
                "model": "m",
                "messages": [
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": "hi"},
                ],
                "stream": True,
            },
        ),
    ],
)
async def test_without_pictures_the_body_is_as_before(
    server: LLMServer, make: BackendMaker, api: str, expected: dict[str, Any]
) -> None:
    tag = f"plain-{api}"
    backend = make(server.url(tag=tag), api=api, model="m")
    await answer(backend, ask("hi"), "stream")
    assert server.record(tag).raw == httpx_json(expected)


# -- the refusal in text-only dialects -------------------------------------------------------


@pytest.mark.parametrize(
    ("api", "options"),
    [
        ("openai-completions", {}),
        ("tgi", {}),
        ("triton-http", {}),
        ("substrate", {}),
        ("muna", {"tag": "@acme/llm"}),
    ],
)
@pytest.mark.parametrize("mode", ["stream", "create"])
async def test_a_text_only_dialect_refuses_pictures_before_sending(
    server: LLMServer, make: BackendMaker, api: str, options: dict[str, Any], mode: str
) -> None:
    tag = f"refuse-{api}-{mode}"
    backend = make(server.url(tag=tag), api=api, model="m", options=options)
    request = ask("what is this?", CAT, DOG)
    if mode == "create":
        with pytest.raises(ImagesRefused) as caught:
            await backend.create(request)
        error: BaseException | None = caught.value
    else:
        events, error = await drain(backend.stream(request))
        assert events == []
    assert isinstance(error, UsageError) and isinstance(error, BackendError)
    assert error.exit_code == 2
    assert str(error).startswith(
        f"Profile 'test' (api {api!r}) cannot take pictures (2 pictures: cat.png, dog.jpg); "
        "use a profile whose server can (api 'openai', 'anthropic', 'ollama')."
    )
    assert server.record_or_none(tag) is None  # nothing was sent


async def test_a_generation_ends_with_the_refusal_not_a_crash(
    server: LLMServer, make: BackendMaker
) -> None:
    backend = make(server.url(tag="refuse-gen"), api="tgi", model="m")
    generation = Generation(backend, ask("what is this?", CAT))
    async with generation:
        assert await generation.wait() is State.ERROR
    assert isinstance(generation.error, ImagesRefused)
    assert server.record_or_none("refuse-gen") is None


def test_a_plain_text_prompt_refuses_pictures_for_any_caller() -> None:
    # Triton gRPC builds its prompt tensor with prompt_text: the last line of defence
    assert prompt_text(ask("hi")) == "Be brief.\n\nUser: hi\n\nAssistant:"
    with pytest.raises(ImagesRefused, match="A backend whose prompt is plain text cannot"):
        prompt_text(ask("hi", CAT))


async def test_triton_grpc_refuses_pictures_before_it_contacts_the_server() -> None:
    from tokentide.backends.registry import create_backend

    # Port 1 on loopback: nothing listens; a refusal that came after contacting the
    # server would be CannotConnect instead.
    backend = create_backend(Profile(name="g", api="triton-grpc", url="127.0.0.1:1", model="m"))
    request = GenerationRequest(messages=(Message("user", "what is this?", images=(CAT,)),))
    try:
        with pytest.raises(ImagesRefused, match="Profile 'g' \\(api 'triton-grpc'\\)"):
            await backend.create(request)
        events, error = await drain(backend.stream(request))
        assert events == [] and isinstance(error, ImagesRefused)
    finally:
        await backend.aclose()
