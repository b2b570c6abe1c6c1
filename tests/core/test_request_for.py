"""One request builder (issue 13 item 3): the profile's model and sampling, each beaten
by an override that is set; used alike by ``tide ask``, the chat session and compare."""

from __future__ import annotations

import pytest

from tokentide.backends.base import Message, request_for
from tokentide.config.model import Profile

PROFILE = Profile(
    name="p", api="openai", url="http://x/v1", model="m", temperature=0.7, max_tokens=50,
    top_p=0.9, seed=1,
)  # fmt: skip


def test_the_profile_fills_the_request() -> None:
    request = request_for(PROFILE, [Message("user", "hi")])
    assert request.messages == (Message("user", "hi"),)
    assert (request.model, request.temperature, request.max_tokens, request.top_p, request.seed) == (
        "m", 0.7, 50, 0.9, 1,
    )  # fmt: skip


def test_overrides_that_are_set_beat_the_profile() -> None:
    request = request_for(
        PROFILE, [Message("user", "hi")], {"temperature": 0.1, "seed": None, "model": "other"}
    )
    assert (request.model, request.temperature, request.seed) == ("other", 0.1, 1)


def test_an_unknown_override_is_a_bug_not_a_silent_drop() -> None:
    with pytest.raises(ValueError, match="no such override"):
        request_for(PROFILE, [], {"temprature": 0.1})
