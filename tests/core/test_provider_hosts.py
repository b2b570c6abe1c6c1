"""Where a provider's key may go (:func:`tokentide.config.providers.key_allowed`) and how
``OLLAMA_HOST`` is read (:func:`~tokentide.config.providers.ollama_host_url`), and the
same rule as :meth:`Profile.resolve_api_key` applies it."""

from __future__ import annotations

import pytest

from tokentide.config.model import Profile
from tokentide.config.providers import key_allowed, ollama_host_url


@pytest.mark.parametrize(
    ("api", "url", "allowed"),
    [
        ("openai", "https://api.openai.com/v1", True),
        ("openai", "HTTPS://API.OpenAI.com:443/v1", True),
        ("openai", "https://api.openai.com./v1", True),
        ("openai-completions", "https://api.openai.com/v1", True),
        ("openai", "http://api.openai.com/v1", False),  # plain http: never
        ("openai", "https://api.openai.com:8443/v1", False),
        ("openai", "https://api.openai.com.evil.example/v1", False),
        ("openai", "https://evil.example/api.openai.com/v1", False),
        ("openai", "https://user@evil.example/v1", False),
        ("openai", "http://127.0.0.1:8000/v1", False),
        ("openai", "https://api.anthropic.com", False),
        ("anthropic", "https://api.anthropic.com", True),
        ("anthropic", "https://api.openai.com/v1", False),
        ("tgi", "https://router.huggingface.co/v1", True),
        ("tgi", "https://huggingface.co", True),
        ("tgi", "https://abc.us-east-1.aws.endpoints.huggingface.cloud", True),
        ("tgi", "https://evilhuggingface.co", False),
        ("tgi", "https://huggingface.co.evil.example", False),
        ("tgi", "http://127.0.0.1:8080", False),
        ("triton-http", "https://api.openai.com/v1", False),
        ("ollama", "http://127.0.0.1:11434", False),
    ],
)
def test_a_provider_key_goes_only_to_its_own_host(api: str, url: str, allowed: bool) -> None:
    assert key_allowed(api, url, {}) is allowed


@pytest.mark.parametrize(
    ("base", "url", "allowed"),
    [
        ("http://127.0.0.1:8000/v1", "http://127.0.0.1:8000/v1", True),
        ("http://127.0.0.1:8000/v1", "HTTP://127.0.0.1:8000/other", True),  # origin only
        ("https://proxy.example/v1", "https://PROXY.example:443/v1", True),
        ("http://127.0.0.1:8000/v1", "http://127.0.0.1:8001/v1", False),
        ("http://127.0.0.1:8000/v1", "https://127.0.0.1:8000/v1", False),
        ("http://127.0.0.1:8000/v1", "http://localhost:8000/v1", False),
        ("not a url", "http://127.0.0.1:8000/v1", False),
    ],
)
def test_the_base_url_variable_names_one_more_origin(base: str, url: str, allowed: bool) -> None:
    assert key_allowed("openai", url, {"OPENAI_BASE_URL": base}) is allowed


def test_resolve_api_key_applies_the_rule() -> None:
    env = {"OPENAI_API_KEY": "sk-env", "MY": "sk-my"}
    local = Profile(name="p", api="openai", url="http://127.0.0.1:8000/v1")
    assert local.resolve_api_key(env) is None
    assert local.resolve_api_key({**env, "OPENAI_BASE_URL": "http://127.0.0.1:8000/v1"}) == (
        "sk-env"
    )
    cloud = Profile(name="p", api="openai", url="https://api.openai.com/v1")
    assert cloud.resolve_api_key(env) == "sk-env"
    assert Profile(name="p", api="openai").resolve_api_key(env) == "sk-env"  # default url
    named = Profile(name="p", api="openai", url="http://127.0.0.1:1/v1", api_key_env="MY")
    assert named.resolve_api_key(env) == "sk-my"
    assert (
        Profile(name="p", api="openai", url="http://h/v1", api_key_env="NONE").resolve_api_key(env)
        is None
    )  # named and unset: no fallback to the provider's
    in_file = Profile(name="p", api="openai", url="http://h/v1", api_key="sk-file")
    assert in_file.resolve_api_key(env) == "sk-file"
    assert (
        Profile(name="p", api="triton-http", url="https://api.openai.com").resolve_api_key(env)
        is None
    )


@pytest.mark.parametrize(
    ("raw", "url"),
    [
        ("127.0.0.1:11500", "http://127.0.0.1:11500"),
        ("gpu-box", "http://gpu-box:11434"),
        ("gpu-box:8080", "http://gpu-box:8080"),
        ("http://gpu-box", "http://gpu-box:80"),
        ("https://gpu-box", "https://gpu-box:443"),
        ("https://gpu-box:9443/ollama/", "https://gpu-box:9443/ollama"),
        ("0.0.0.0", "http://127.0.0.1:11434"),
        ("0.0.0.0:9000", "http://127.0.0.1:9000"),
        (":11500", "http://127.0.0.1:11500"),
        ("::", "http://[::1]:11434"),
        ("[::1]", "http://[::1]:11434"),
        ("[fe80::1]:9000", "http://[fe80::1]:9000"),
        ("ollama.com", "https://ollama.com:443"),
        ('"gpu-box:8080"', "http://gpu-box:8080"),
        ("  gpu-box  ", "http://gpu-box:11434"),
        ("gpu-box:99999", "http://gpu-box:11434"),
        ("gpu-box:abc", "http://gpu-box:11434"),
    ],
)
def test_ollama_host_is_read_as_the_ollama_cli_reads_it(raw: str, url: str) -> None:
    assert ollama_host_url(raw) == url


def test_a_provider_key_that_is_not_sent_is_still_never_shown() -> None:
    from tokentide.backends.registry import register_profile_secrets
    from tokentide.redact import redact

    canary = "sk-unsent-CANARY-9876543210"
    local = Profile(name="p", api="openai", url="http://127.0.0.1:8000/v1")
    register_profile_secrets(local, {"OPENAI_API_KEY": canary})
    assert redact(f"server said {canary}") == "server said ***"
