"""``tide config check`` asks a backend for its server's own health answers when the
backend declares it has them (ReportsHealth), never by its api name."""

from __future__ import annotations

import pytest

from tokentide.backends.base import ReportsHealth
from tokentide.backends.registry import create_backend
from tokentide.config.model import Profile


@pytest.mark.parametrize(
    ("api", "url", "health"),
    [
        ("triton-grpc", "127.0.0.1:1", True),
        ("openai", "http://127.0.0.1:1/v1", False),
        ("triton-http", "http://127.0.0.1:1", False),
        ("ollama", "http://127.0.0.1:1", False),
    ],
)
async def test_only_backends_with_health_answers_declare_them(
    api: str, url: str, health: bool
) -> None:
    backend = create_backend(Profile(name="p", api=api, url=url, model="m"))
    try:
        assert isinstance(backend, ReportsHealth) is health
    finally:
        await backend.aclose()
