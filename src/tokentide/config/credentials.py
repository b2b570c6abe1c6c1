"""Which API key a profile sends, and where it comes from (never the key itself in text).

In order: the variable the profile names (``api_key_env``), the key written in the
config file (``api_key``), then the provider's own variable (``OPENAI_API_KEY``, ...,
see :mod:`tokentide.config.providers`), but that last one only when the profile's url
is the provider's host or the origin of its base-URL variable.  So a key the profile
names explicitly goes wherever the profile points, and a cloud key found in the
environment never reaches a local or third-party server by itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from tokentide.config.providers import env_url, key_allowed, normal_origin, provider_for

if TYPE_CHECKING:
    from tokentide.config.model import Profile

__all__ = ["KeySource", "effective_url", "key_source"]

How = Literal["api_key_env", "config file", "provider", "none"]


@dataclass(frozen=True, slots=True)
class KeySource:
    """The key a profile sends and how it was found."""

    how: How
    key: str | None = field(default=None, repr=False)
    var: str | None = None
    """The environment variable read (or that would be read)."""
    withheld_from: str | None = None
    """The host a set provider key is *not* sent to (not the provider's)."""

    def describe(self) -> str:
        """One line for ``tide config show``: where the key comes from, never its value."""
        if self.how == "api_key_env":
            if self.key:
                return f"from ${self.var} (api_key_env)"
            return f"none — ${self.var} (api_key_env) is not set"
        if self.how == "config file":
            return "in the config file"
        if self.how == "provider":
            return f"from ${self.var} (provider default)"
        if self.withheld_from is not None:
            return (
                f"none — ${self.var} is set but not sent to {self.withheld_from} "
                "(not the provider's host); set api_key_env to send it"
            )
        if self.var:
            return f"none — ${self.var} is not set"
        return "none"


def effective_url(profile: Profile, env: Mapping[str, str]) -> tuple[str | None, str | None]:
    """The url the profile's requests go to and where it comes from: ``None`` for the
    profile's own ``url``, ``"$OPENAI_BASE_URL"``, ``"provider default"``; (None, None)
    when there is none."""
    if profile.url:
        return profile.url, None
    found = env_url(profile.api, env)
    if found is None:
        return None, None
    return found


def key_source(profile: Profile, env: Mapping[str, str]) -> KeySource:
    """The key ``profile`` sends to its (effective) url, and how it was found."""
    if profile.api_key_env:
        return KeySource("api_key_env", env.get(profile.api_key_env) or None, profile.api_key_env)
    if profile.api_key:
        return KeySource("config file", profile.api_key)
    provider = provider_for(profile.api)
    if provider is None or provider.key_var is None:
        return KeySource("none")
    var = provider.key_var
    url, _ = effective_url(profile, env)
    key = env.get(var) or None
    if key_allowed(profile.api, url, env):
        return KeySource("provider", key, var) if key else KeySource("none", var=var)
    if key is None:
        return KeySource("none")
    origin = normal_origin(url) if url else None
    return KeySource("none", var=var, withheld_from=origin[1] if origin else "this url")
