"""``list_models``: every server's listing against the loopback test servers (the HTTP
one, tests/servers/llm_server.py, and the Triton gRPC one), the key rules, errors, and
what a model switcher gets from the domain API."""

from __future__ import annotations

import json
import socket
import struct
import urllib.parse
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.hostile_payloads import PAYLOADS
from tests.servers.llm_server import LLMServer
from tests.servers.triton_grpc_server import TritonServer
from tests.servers.triton_grpc_server import serve as serve_grpc
from tokentide.backends.models import (
    MAX_LIST_BYTES,
    ModelInfo,
    NoModelList,
    can_switch,
    configured_model,
    is_configured,
    list_models,
    with_model,
)
from tokentide.backends.models_local import gguf_metadata
from tokentide.config.model import Profile
from tokentide.errors import (
    BackendTimeout,
    CannotConnect,
    ConfigError,
    HTTPStatusError,
    LimitExceeded,
    ProtocolError,
    ServerError,
)
from tokentide.sanitize import sanitize_title

KEY = "sk-test-LISTING-0123456789"


def profile(api: str, url: str | None, **fields: Any) -> Profile:
    return Profile(name="t", api=api, url=url, **fields)


def knobs_header(**knobs: Any) -> dict[str, str]:
    """Knobs in the X-Tide-Knobs header: the profile's url stays plain."""
    return {"X-Tide-Knobs": urllib.parse.urlencode(knobs)}


# -- each server ------------------------------------------------------------------------


async def test_openai_list(server: LLMServer) -> None:
    models = await list_models(
        profile("openai", server.url(models="a,b,c", tag="oa") + "/v1"), env={}
    )
    assert [m.id for m in models] == ["a", "b", "c"]
    assert models[0].owned_by == "system" and models[0].context_window is None
    assert models[0].details == {"created": "2024-12-01"}
    record = server.record("oa")
    assert (record.method, record.path, record.body) == ("GET", "/v1/models", None)
    assert not any(r.path.endswith("/props") and r.tag == "oa" for r in server.records)


async def test_openai_completions_profile_lists_the_same_route(server: LLMServer) -> None:
    models = await list_models(profile("openai-completions", server.url() + "/v1"), env={})
    assert [m.id for m in models] == ["test-model"]
    assert server.last().path == "/v1/models"


async def test_vllm_max_model_len_is_the_context_window(server: LLMServer) -> None:
    url = server.url(flavor="vllm", models="smollm2", n_ctx=4096) + "/v1"
    (model,) = await list_models(profile("openai", url), env={})
    assert model == ModelInfo(
        id="smollm2",
        context_window=4096,
        owned_by="vllm",
        details={"root": "/models/smollm2", "created": "2024-12-01"},
    )


async def test_llama_server_context_comes_from_props(server: LLMServer) -> None:
    url = server.url(flavor="llamacpp", n_ctx=3072, tag="lc") + "/v1"
    (model,) = await list_models(profile("openai", url), env={})
    assert model.context_window == 3072  # what it runs with, not the trained 8192
    assert model.details["trained_context"] == "8192"
    assert model.details["parameters"] == "135M" and model.details["size"] == "98.3 MB"
    props = [r for r in server.records if r.tag == "lc" and r.path == "/props"]
    assert len(props) == 1 and props[0].method == "GET"  # at the root, not under /v1


async def test_ollama_tags(server: LLMServer) -> None:
    (model,) = await list_models(profile("ollama", server.url(tag="ol")), env={})
    assert model.id == "llama3.2:latest"
    assert dict(model.details) == {
        "parameters": "3.2B",
        "quantization": "Q4_K_M",
        "family": "llama",
        "format": "gguf",
        "size": "2.0 GB",
        "modified": "2025-11-30",
    }
    assert server.record("ol").path == "/api/tags"


async def test_tgi_info(server: LLMServer) -> None:
    (model,) = await list_models(profile("tgi", server.url(models="bigscience/bloom-560m")), env={})
    assert model.id == "bigscience/bloom-560m" and model.context_window == 2048
    assert model.details["max_input_tokens"] == "1024"
    assert model.details["version"] == "3.3.6"


async def test_anthropic_follows_pages_with_key_and_version(server: LLMServer) -> None:
    url = server.url(api_key=KEY, page=2, models="m4,m3,m2,m1,m0", tag="an")
    p = profile("anthropic", url, api_key_env="MY_ANTHROPIC_KEY")
    models = await list_models(p, env={"MY_ANTHROPIC_KEY": KEY})
    assert [m.id for m in models] == ["m4", "m3", "m2", "m1", "m0"]
    assert models[0].details["name"] == "M4"
    pages = [r for r in server.records if r.tag == "an"]
    assert len(pages) == 3
    assert all(r.headers["x-api-key"] == KEY for r in pages)
    assert all(r.headers["anthropic-version"] == "2023-06-01" for r in pages)
    assert [r.knobs.get("after_id") for r in pages] == [None, "m3", "m1"]


async def test_anthropic_wrong_key_is_a_401_naming_the_url(server: LLMServer) -> None:
    url = server.url(api_key=KEY)
    with pytest.raises(HTTPStatusError) as caught:
        await list_models(profile("anthropic", url, api_key_env="K"), env={"K": "sk-wrong-999999"})
    assert caught.value.status == 401 and caught.value.exit_code == 4
    message = caught.value.message  # the key in the test server's url is redacted there too
    assert message.startswith(server.base) and "/v1/models?limit=1000 answered HTTP 401" in message
    assert "API key" in (caught.value.hint or "")


async def test_triton_http_index(server: LLMServer) -> None:
    url = server.url(models="toy,broken", unavailable="broken", tag="th")
    models = await list_models(profile("triton-http", url), env={})  # no model needed
    assert [(m.id, m.ready) for m in models] == [("toy", True), ("broken", False)]
    assert models[1].details["state"] == "UNAVAILABLE"
    assert "unable to load" in models[1].details["reason"]
    record = server.record("th")
    assert (record.method, record.path, record.body) == ("POST", "/v2/repository/index", {})


@pytest.fixture
async def grpc_server() -> AsyncIterator[TritonServer]:
    async with serve_grpc() as running:
        yield running


async def test_triton_grpc_repository_index(grpc_server: TritonServer) -> None:
    models = await list_models(profile("triton-grpc", grpc_server.target), env={})
    ready = {m.id for m in models if m.ready}
    assert ready >= {"toy", "unary", "renamed"} and all(m.details["version"] == "1" for m in models)
    (broken,) = [m for m in models if not m.ready]
    assert broken.id == "broken" and broken.details["state"] == "UNAVAILABLE"
    assert broken.details["reason"] == "failed to load 'broken'"
    assert grpc_server.calls["RepositoryIndex"] == 1


async def test_triton_grpc_key_refused() -> None:
    async with serve_grpc(api_key=KEY) as running:
        p = profile("triton-grpc", running.target, options={"metadata": {"x-api-key": "${K}"}})
        assert await list_models(p, env={"K": KEY})
        with pytest.raises(HTTPStatusError) as caught:
            await list_models(p, env={"K": "sk-wrong-999999"})
    assert caught.value.status == 401
    assert running.target in caught.value.message and "refused to list" in caught.value.message


async def test_triton_grpc_closed_port() -> None:
    port = _closed_port()
    with pytest.raises(CannotConnect) as caught:
        await list_models(profile("triton-grpc", f"127.0.0.1:{port}"), env={})
    assert f"127.0.0.1:{port}" in caught.value.message and caught.value.exit_code == 3


# -- in-process ------------------------------------------------------------------------


def _gguf(path: Path, pairs: list[tuple[str, int, bytes]]) -> Path:
    """A GGUF v3 header: (key, type, packed value) pairs, then an array to skip."""
    out = bytearray(b"GGUF" + struct.pack("<IQQ", 3, 0, len(pairs) + 1))

    def string(text: str) -> bytes:
        raw = text.encode()
        return struct.pack("<Q", len(raw)) + raw

    out += (
        string("tokenizer.ggml.scores") + struct.pack("<IIQ", 9, 6, 3) + struct.pack("<3f", 1, 2, 3)
    )
    for key, kind, value in pairs:
        out += string(key) + struct.pack("<I", kind) + value
    path.write_bytes(bytes(out))
    return path


def _gguf_str(text: str) -> bytes:
    return struct.pack("<Q", len(text.encode())) + text.encode()


async def test_llamacpp_lists_its_file_without_loading_it(tmp_path: Path) -> None:
    path = _gguf(
        tmp_path / "tiny.gguf",
        [
            ("general.architecture", 8, _gguf_str("llama")),
            ("general.name", 8, _gguf_str("Tiny")),
            ("general.size_label", 8, _gguf_str("1M")),
            ("llama.context_length", 4, struct.pack("<I", 4096)),
        ],
    )
    p = profile("llamacpp", None, options={"model_path": str(path), "n_ctx": 1000})
    (model,) = await list_models(p, env={})
    assert model.id == "tiny.gguf"
    assert model.context_window == 1024  # n_ctx rounded up as the backend does
    assert model.details["trained_context"] == "4096"
    assert model.details["name"] == "Tiny" and model.details["parameters"] == "1M"
    assert is_configured(model, p) and not can_switch(p)
    with pytest.raises(ConfigError):
        with_model(p, model)


def test_gguf_metadata_of_a_file_that_is_not_gguf(tmp_path: Path) -> None:
    (tmp_path / "x.gguf").write_bytes(b"not a model")
    assert gguf_metadata(tmp_path / "x.gguf") == {}
    truncated = _gguf(tmp_path / "t.gguf", [("general.name", 8, _gguf_str("cut"))])
    truncated.write_bytes(truncated.read_bytes()[:-2])
    assert "general.name" not in gguf_metadata(truncated)


async def test_llamacpp_missing_model_path(tmp_path: Path) -> None:
    p = profile("llamacpp", None, options={"model_path": str(tmp_path / "none.gguf")})
    with pytest.raises(ConfigError, match="not a file"):
        await list_models(p, env={})


async def test_local_lists_its_target_without_importing_it() -> None:
    p = profile("local", None, options={"target": "no_such_module_xyz:generate"})
    (model,) = await list_models(p, env={})
    assert model.id == "no_such_module_xyz:generate" and is_configured(model, p)


@pytest.mark.parametrize("api", ["substrate", "muna"])
async def test_servers_without_a_model_list(api: str) -> None:
    with pytest.raises(NoModelList) as caught:
        await list_models(profile(api, "http://127.0.0.1:9"), env={})
    assert caught.value.exit_code == 2 and "no model list" in caught.value.message


# -- keys -------------------------------------------------------------------------------


async def test_the_openai_key_is_not_sent_to_a_local_server(server: LLMServer) -> None:
    url = server.url(tag="nokey") + "/v1"
    await list_models(profile("openai", url), env={"OPENAI_API_KEY": KEY})
    assert "authorization" not in server.record("nokey").headers


async def test_a_named_key_is_sent(server: LLMServer) -> None:
    url = server.url(tag="key") + "/v1"
    await list_models(profile("openai", url, api_key_env="MINE"), env={"MINE": KEY})
    assert server.record("key").headers["authorization"] == f"Bearer {KEY}"


async def test_the_openai_key_goes_to_openai_base_url(server: LLMServer) -> None:
    base = server.url(tag="base") + "/v1"
    env = {"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": base}
    assert await list_models(profile("openai", None), env=env)
    assert server.record("base").headers["authorization"] == f"Bearer {KEY}"


# -- errors -----------------------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_closed_port() -> None:
    url = f"http://127.0.0.1:{_closed_port()}/v1"
    with pytest.raises(CannotConnect) as caught:
        await list_models(profile("openai", url), env={})
    assert f"{url}/models" in caught.value.message and caught.value.exit_code == 3
    assert "\n" not in caught.value.message


async def test_401(server: LLMServer) -> None:
    url = server.url(status=401) + "/v1"
    with pytest.raises(HTTPStatusError) as caught:
        await list_models(profile("openai", url), env={})
    assert caught.value.status == 401 and f"{url}/models" in caught.value.message
    assert "Invalid API key" in caught.value.message


async def test_404_is_a_server_without_that_listing(server: LLMServer) -> None:
    url = server.url(status=404)
    with pytest.raises(HTTPStatusError) as caught:
        await list_models(profile("ollama", url), env={})
    assert caught.value.message == f"{url}/api/tags has no model list (HTTP 404)."
    assert "api = 'ollama'" in (caught.value.hint or "")


@pytest.mark.parametrize(
    ("body", "error", "words"),
    [
        ("{not json", ProtocolError, "not JSON"),
        ('{"object": "list", "items": []}', ProtocolError, "did not answer with a model list"),
        ('{"error": {"message": "engine down"}}', ServerError, "engine down"),
        ("", ProtocolError, "an empty body"),
    ],
)
async def test_garbage(server: LLMServer, body: str, error: type[Exception], words: str) -> None:
    url = server.url(list_body=body) + "/v1"
    with pytest.raises(error) as caught:
        await list_models(profile("openai", url), env={})
    assert words in str(caught.value) and url in str(caught.value)


async def test_html_page(server: LLMServer) -> None:
    with pytest.raises(ProtocolError, match="HTML page"):
        await list_models(profile("tgi", server.url(html=1)), env={})


async def test_oversized_list_is_cut(server: LLMServer) -> None:
    url = server.url(pad=MAX_LIST_BYTES // 4, models="a,b,c,d,e") + "/v1"
    with pytest.raises(LimitExceeded) as caught:
        await list_models(profile("openai", url), env={})
    assert f"{MAX_LIST_BYTES:,} bytes" in caught.value.message and url in caught.value.message


async def test_timeout(server: LLMServer) -> None:
    url = server.url(delay_headers=2, tag="slow") + "/v1"
    with pytest.raises(BackendTimeout) as caught:
        await list_models(profile("openai", url), env={}, timeout=0.2)
    assert caught.value.exit_code == 5 and url in caught.value.message


# -- hostile names ----------------------------------------------------------------------


async def test_hostile_ids_are_kept_exact_and_shown_sanitised(server: LLMServer) -> None:
    ids = [p.payload for p in PAYLOADS]
    p = profile("openai", server.url() + "/v1", headers=knobs_header(models=json.dumps(ids)))
    models = await list_models(p, env={})
    assert [m.id for m in models] == ids  # what must be sent back as `model`
    for model, payload in zip(models, PAYLOADS, strict=True):
        label = model.label()
        assert label == (sanitize_title(payload.payload, 200) or "(no name)")
        assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in label), payload.name


# -- the API a model switcher uses ------------------------------------------------------


def test_configured_model_and_switching() -> None:
    models = [ModelInfo("llama3.2:latest"), ModelInfo("qwen3:8b")]
    p = profile("ollama", "http://127.0.0.1:11434", model="llama3.2")
    assert configured_model(models, p) == models[0]  # "llama3.2" is "llama3.2:latest"
    switched = with_model(p, models[1])
    assert switched.model == "qwen3:8b" and switched.url == p.url and can_switch(p)
    assert configured_model(models, profile("ollama", "http://h")) is None
    triton = profile("triton-grpc", "127.0.0.1:8001", model="a")
    moved = with_model(triton, ModelInfo("b", details={"version": "3"}))
    assert (moved.model, moved.options["model_version"]) == ("b", "3")


def test_model_info_is_hashable_and_shows_one_line() -> None:
    info = ModelInfo("m\nx", details={"size": "2.0 GB", "quantization": "Q4\x1b[31m"})
    assert hash(info) == hash(ModelInfo("m\nx"))
    assert info.label() == "m x"
    assert info.detail_text() == "size 2.0 GB, quantization Q4"
