"""A local predictor's answer obeys max_answer_bytes, like the HTTP backends."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tokentide.backends.base import GenerationRequest
from tokentide.backends.events import TextDelta
from tokentide.backends.local import LocalBackend
from tokentide.config.model import Limits, Profile
from tokentide.errors import LimitExceeded


async def test_huge_yields_stop_at_the_limit_and_keep_the_partial() -> None:
    def predictor() -> Iterator[str]:
        for _ in range(100):
            yield "x" * (10 << 20)

    profile = Profile(name="t", api="local", limits=Limits(max_answer_bytes=15 << 20))
    backend = LocalBackend(predictor, target="t:predictor", profile=profile)
    text: list[str] = []
    with pytest.raises(LimitExceeded, match="passed"):
        async for event in backend.stream(GenerationRequest(messages=[])):
            if isinstance(event, TextDelta):
                text.append(event.text)
    assert len("".join(text)) == 15 << 20
