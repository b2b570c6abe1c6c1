"""Building the backend a profile names.  Which ``api`` names exist, the module of
each and the options it takes are declared in :mod:`tokentide.config.apis` (a leaf
module the config loader reads without importing any backend); only the chosen
backend's module is imported, so a missing optional dependency (grpcio,
llama-cpp-python) matters only to profiles that use it.
"""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Protocol, cast
from urllib.parse import urlsplit

from tokentide.backends.base import Backend
from tokentide.config.apis import API_NAMES, ApiSpec, api_spec
from tokentide.config.model import Profile
from tokentide.config.providers import provider_for
from tokentide.config.secrets import is_secret_name
from tokentide.errors import ConfigError
from tokentide.redact import register_secret

__all__ = [
    "API_NAMES",
    "ApiSpec",
    "BackendFactory",
    "api_spec",
    "create_backend",
    "register_profile_secrets",
    "with_env_url",
]


class BackendFactory(Protocol):
    def __call__(self, profile: Profile, env: Mapping[str, str], /) -> Backend: ...


def create_backend(profile: Profile, env: Mapping[str, str] | None = None) -> Backend:
    """Build the backend a profile describes.  Raises :class:`ConfigError` for a profile
    that cannot work (unknown api, missing url, missing optional dependency)."""
    spec = api_spec(profile.api)
    env = os.environ if env is None else env
    if spec.needs_url and not profile.url:
        profile = with_env_url(profile, env)
    if spec.needs_url and not profile.url:
        raise ConfigError(
            f"Profile {profile.name!r} (api {profile.api!r}) has no url.",
            hint='Add url = "http://host:port..." to the profile, or pass --url.',
        )
    unknown = sorted(set(profile.options) - spec.options)
    if unknown:
        raise ConfigError(
            f"Profile {profile.name!r}: api {profile.api!r} does not take "
            f"{', '.join(repr(k) for k in unknown)}.",
            hint=(
                f"It takes: {', '.join(sorted(spec.options))}."
                if spec.options
                else "It takes only the common keys (see `tide config init`)."
            ),
        )
    try:
        module = importlib.import_module(spec.module)
    except ImportError as error:
        hint = f"Install it with: {spec.install_hint}" if spec.install_hint else None
        raise ConfigError(
            f"The {profile.api!r} backend cannot be loaded: {error}.", hint=hint
        ) from error
    factory = cast(BackendFactory, module.from_profile)
    register_profile_secrets(profile, env)
    return factory(profile, env)


def with_env_url(profile: Profile, env: Mapping[str, str]) -> Profile:
    """``profile`` with the url its api's convention gives when it names none:
    ``$OPENAI_BASE_URL`` / ``$ANTHROPIC_BASE_URL`` / ``$OLLAMA_HOST``, else the provider's
    own (``https://api.openai.com/v1``, ...).  A variable that is not an http(s) URL is
    a :class:`ConfigError` naming it."""
    if profile.url:
        return profile
    from tokentide.config.credentials import effective_url
    from tokentide.config.validate import check_url

    url, source = effective_url(profile, env)
    if url is None:
        return profile
    if source and source.startswith("$"):
        check_url(url, f"{source}: ")
    return replace(profile, url=url)


_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def register_profile_secrets(profile: Profile, env: Mapping[str, str]) -> None:
    """Tell :mod:`tokentide.redact` every credential ``profile`` can send: its API key,
    the values of secret-named headers, params and gRPC metadata (``${NAME}`` expanded
    from ``env``) and a password in its URL.  From then on no error, log line, history
    entry or export shows them, whoever quotes them back."""
    key = profile.resolve_api_key(env)
    if key:
        register_secret(key)
    provider = provider_for(profile.api)
    if provider is not None and provider.key_var and env.get(provider.key_var):
        register_secret(env[provider.key_var])  # even when not sent: never shown either
    tables: list[Mapping[str, object]] = [profile.headers, profile.params]
    metadata = profile.options.get("metadata")
    if isinstance(metadata, Mapping):
        tables.append(metadata)
    for table in tables:
        for name, value in table.items():
            if not isinstance(value, str) or not is_secret_name(str(name)):
                continue
            register_secret(value)
            for ref in _ENV_REF.findall(value):
                if env.get(ref):
                    register_secret(env[ref])
            scheme, _, credential = value.partition(" ")
            if credential and scheme.lower() in ("bearer", "basic", "token"):
                register_secret(credential)
    if profile.url:
        try:
            password = urlsplit(profile.url).password
        except ValueError:
            password = None
        if password:
            register_secret(password)
