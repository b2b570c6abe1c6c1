"""Targets (a profile and its backend, under a unique label) and the requests sent to them.

A comparison's generations are built here, so every round (the headless runner, the
comparison screen) sends what ``tide ask`` would send for the same profile.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import urllib.parse
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from tokentide.backends.base import Backend, GenerationRequest, Message, request_for
from tokentide.compare.results import Mode
from tokentide.config.model import Profile
from tokentide.generation import Generation, RetryPolicy

__all__ = [
    "AD_HOC",
    "Clock",
    "Target",
    "build_request",
    "close_targets",
    "make_targets",
    "new_generation",
    "start_generation",
    "target_labels",
]

Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class Target:
    """A profile and the backend built from it, under a unique label."""

    label: str
    profile: Profile
    backend: Backend

    def describe(self) -> dict[str, Any]:
        """What the JSON output says about the target (no keys, no query strings)."""
        url = self.profile.url
        if url:
            parts = urllib.parse.urlsplit(url)
            host = parts.hostname or ""
            if parts.port is not None:
                host = f"{host}:{parts.port}"
            url = urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))
        return {
            "label": self.label,
            "profile": self.profile.name,
            "api": self.profile.api,
            "url": url,
            "model": self.profile.model,
            "backend": self.backend.name,
        }


def make_targets(
    profiles: Sequence[Profile], factory: Callable[[Profile], Backend] | None = None
) -> list[Target]:
    """Build each profile's backend (``factory`` defaults to
    :func:`~tokentide.backends.registry.create_backend`).  Labels are the profile names,
    see :func:`target_labels`.  Raises what the factory raises."""
    if factory is None:
        from tokentide.backends.registry import create_backend

        factory = create_backend
    targets: list[Target] = []
    try:
        for label, profile in zip(target_labels(profiles), profiles, strict=True):
            targets.append(Target(label, profile, factory(profile)))
    except BaseException:
        for target in targets:
            _close_soon(target.backend)
        raise
    return targets


AD_HOC = "command line"
"""The name :func:`~tokentide.config.load.profile_from_flags` gives an ad-hoc profile."""


def _label(profile: Profile) -> str:
    """A profile's name; for an ad-hoc one, its model, else its host, else its api."""
    if profile.name != AD_HOC:
        return profile.name
    if profile.model:
        return profile.model
    if profile.url:
        host = urllib.parse.urlsplit(profile.url).netloc.rpartition("@")[2]
        if host:
            return host
    return profile.api


def target_labels(profiles: Sequence[Profile]) -> list[str]:
    """Unique labels: profile names (an ad-hoc profile: model, host or api), with ``#2``,
    ``#3`` … added to repeats."""
    labels = []
    seen: dict[str, int] = {}
    for profile in profiles:
        name = _label(profile)
        seen[name] = seen.get(name, 0) + 1
        labels.append(name if seen[name] == 1 else f"{name}#{seen[name]}")
    return labels


def _close_soon(backend: Backend) -> None:
    """Close a backend from synchronous code (best effort)."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        with contextlib.suppress(Exception):
            asyncio.run(backend.aclose())
    else:
        task = loop.create_task(backend.aclose())
        _PENDING.add(task)
        task.add_done_callback(_PENDING.discard)


_PENDING: set[asyncio.Task[None]] = set()


async def close_targets(targets: Iterable[Target]) -> None:
    """Close every distinct backend once."""
    seen: set[int] = set()
    for target in targets:
        if id(target.backend) not in seen:
            seen.add(id(target.backend))
            with contextlib.suppress(Exception):
                await target.backend.aclose()


def build_request(profile: Profile, prompt: str) -> GenerationRequest:
    """The request ``tide ask`` would send for ``prompt`` with this profile."""
    head = (Message("system", profile.system),) if profile.system else ()
    return request_for(profile, (*head, Message("user", prompt)))


def new_generation(
    target: Target, mode: Mode, prompt: str, *, clock: Clock = time.perf_counter
) -> Generation:
    """A generation of ``prompt`` on ``target`` in ``mode``, not started yet."""
    profile = target.profile
    return Generation(
        target.backend,
        build_request(profile, prompt),
        mode=mode,
        deadlines=profile.deadlines,
        retry=RetryPolicy(max_retries=profile.max_retries),
        clock=clock,
    )


def start_generation(
    target: Target, mode: Mode, prompt: str, *, clock: Clock = time.perf_counter
) -> Generation:
    """Start one generation of ``prompt`` on ``target`` in ``mode`` (the clock starts now)."""
    return new_generation(target, mode, prompt, clock=clock).start()
