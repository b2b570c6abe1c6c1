"""The commented example config that ``tide config init`` writes (mode 0600)."""

from __future__ import annotations

import os
from pathlib import Path

from tokentide.errors import ConfigError

__all__ = ["EXAMPLE_CONFIG", "write_example"]

EXAMPLE_CONFIG = """\
# tokentide configuration.  Docs: docs/configuration.md
# The profile used when none is named with -P/--profile:
default = "local"
# tide ask saves each exchange in the history (tide history list); false: never.
# log = true

[ui]
# theme = "textual-dark"

# [keys]
# stop = "escape"

# The embedded model (SmolLM2-135M-Instruct, in-process; no server needed).
[profiles.local]
api = "llamacpp"
# model_path = "/path/to/any.gguf"
# n_threads = 1
# n_ctx = 2048
# extra_buffers = false   # llama.cpp's AMX/repacked weights; default: off on AMX CPUs

# An OpenAI-compatible server (vLLM, llama.cpp server, LM Studio, Ollama /v1, ...).
# [profiles.vllm]
# api = "openai"
# url = "http://127.0.0.1:8000/v1"
# model = "meta-llama/Llama-3.1-8B-Instruct"
# context_window = 8192   # tokens, when the server does not report it (or reports wrong)

# OpenAI itself.  The key is read from $OPENAI_API_KEY (sent only to api.openai.com or
# to $OPENAI_BASE_URL), never stored here; with no url, $OPENAI_BASE_URL or OpenAI's.
# Any other server gets a key only when its profile names one: api_key_env = "MY_KEY".
# [profiles.openai]
# api = "openai"
# model = "gpt-4o-mini"
# price_in = 0.15         # per million prompt tokens (any currency: shown as written)
# price_out = 0.60        # per million answer tokens

# Hugging Face TGI, native /generate_stream with per-token details.
# [profiles.tgi]
# api = "tgi"
# url = "http://127.0.0.1:8080"

# Triton over gRPC (vLLM / TensorRT-LLM / Python backends, NuPIC).
# [profiles.triton]
# api = "triton-grpc"
# url = "127.0.0.1:8001"
# model = "vllm_model"
# params = { max_tokens = 256 }

# Templates: a profile (or the default one), a model, a system prompt and sampling to
# start from.  tide ask -t review "..."; "New conversation from template" in the chat.
# Command-line flags beat the template; the template beats the profile.
# [templates.review]
# profile = "vllm"
# system = "You review code. Point out bugs first, then style. Be brief."
# temperature = 0.2
# max_tokens = 800
"""


def write_example(path: Path) -> None:
    """Write a commented example config with mode 0600, refusing to overwrite."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ConfigError(f"{path} already exists; not overwriting it.") from None
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(EXAMPLE_CONFIG)
