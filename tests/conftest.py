"""Shared test configuration.

Hypothesis profiles, chosen with ``HYPOTHESIS_PROFILE`` (default ``ci``):

* ``ci``: 1,000 examples, derandomised (the same examples on every run), no deadline;
* ``dev``: 100 random examples, for quick local runs;
* ``nightly``: 100,000 examples (reliability.md §6).
"""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("ci", max_examples=1000, deadline=None, derandomize=True)
settings.register_profile("dev", max_examples=100, deadline=None)
settings.register_profile("nightly", max_examples=100_000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
