"""What :mod:`tokentide.redact` masks, and what it must leave alone."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tokentide import redact as r
from tokentide.backends.registry import register_profile_secrets
from tokentide.config.model import Profile


@pytest.fixture(autouse=True)
def _empty_registry() -> Iterator[None]:
    r._forget_secrets()
    yield
    r._forget_secrets()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("GET https://h/v1?key=AIzaNotAShape123&alt=sse", "GET https://h/v1?key=***&alt=sse"),
        ("https://h/x?api-version=1&access_token=abc.def", "https://h/x?api-version=1&access_token=***"),
        ("url: https://h/?sig=Zm9v%3D&token=t0k", "url: https://h/?sig=***&token=***"),
        ("Authorization: Bearer abcdef123456", "Authorization: ***"),
        ("said Bearer abcdef123456 twice", "said Bearer *** twice"),
    ],
)  # fmt: skip
def test_redact_masks_credentials(text: str, expected: str) -> None:
    assert r.redact(text) == expected


@pytest.mark.parametrize(
    "code",
    [
        "sorted(xs, key=len)",
        "def login(user: str, password: str) -> bool:",
        'headers = {"api_key": api_key}',
        "monkey=1&donkey=2",
    ],
)
def test_redact_content_keeps_everyday_code(code: str) -> None:
    assert r.redact_content(code) == code


@pytest.mark.parametrize(
    "prose",
    [
        "no content before the first-token deadline of 0.5 s",
        "send a Bearer token in the Authorization header",
        "The server at http://h/k/api_key=right/v1 said 401: invalid x-api-key",
    ],
)
def test_redact_leaves_the_rest_of_a_message_readable(prose: str) -> None:
    masked = r.redact(prose)
    assert masked.split("***")[-1] in prose
    if "api_key=" in prose:
        assert masked.endswith(" said 401: invalid x-api-key")
    else:
        assert masked == prose


def test_redact_content_still_masks_known_keys_and_bearer_tokens() -> None:
    r.register_secret("plain-looking-secret-42")
    text = "echo plain-looking-secret-42 and Bearer abcdef123456 and sk-abcdefghijkl"
    assert r.redact_content(text) == "echo *** and Bearer *** and ***"


def test_a_profile_registers_every_credential_it_can_send() -> None:
    profile = Profile(
        name="p",
        api="openai",
        url="https://user:url-password-123@h/v1",
        api_key_env="K",
        headers={"X-Custom-Token": "Bearer header-token-456", "Accept": "text/plain-ish"},
        params={"api_key": "param-key-789", "stream_options": "not-a-secret"},
        options={"metadata": {"x-api-key": "${META}"}},
    )
    register_profile_secrets(profile, {"K": "env-key-000111", "META": "meta-secret-222"})
    text = (
        "env-key-000111 url-password-123 header-token-456 param-key-789 meta-secret-222 "
        "text/plain-ish not-a-secret"
    )
    assert r.redact(text) == "*** *** *** *** *** text/plain-ish not-a-secret"
