"""Shared test configuration.

Hypothesis profiles, chosen with ``HYPOTHESIS_PROFILE`` (default ``ci``):

* ``ci``: 1,000 examples, derandomised (the same examples on every run), no deadline;
* ``dev``: 100 random examples, for quick local runs;
* ``nightly``: 100,000 examples (reliability.md §6).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from tests.servers.llm_server import LLMServer, serve
from tests.tide_process import clean_env

settings.register_profile("ci", max_examples=1000, deadline=None, derandomize=True)
settings.register_profile("dev", max_examples=100, deadline=None)
settings.register_profile("nightly", max_examples=100_000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session")
def server() -> Iterator[LLMServer]:
    """The loopback LLM test server (every HTTP dialect; see tests/servers/llm_server.py),
    one for the whole session: tests find their own requests by tag or ``last()``."""
    with serve() as running:
        yield running


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """The environment of a ``tide`` process: no ``TIDE_*``/``OPENAI*`` variables, its
    own config file and data dir (:func:`tests.tide_process.clean_env`).  Test files
    that need another one define their own ``env``."""
    return clean_env(tmp_path)
