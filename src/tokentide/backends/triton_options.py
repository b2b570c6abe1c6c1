"""A ``triton-grpc`` profile read into :class:`TritonSettings`: the address and TLS, the
tensor names, gRPC metadata (``${NAME}`` from the environment, registered as secrets)
and the request parameters Triton reserves.  Every mistake is a
:class:`~tokentide.errors.ConfigError` naming the profile."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import grpc

from tokentide.backends._cumulative import yields_option
from tokentide.backends.triton_tensors import TensorNames
from tokentide.config.model import Profile
from tokentide.errors import ConfigError
from tokentide.logsetup import register_secret

__all__ = ["DEFAULT_PORT", "RESERVED_PARAMS", "TritonSettings", "Yields", "settings_from"]

DEFAULT_PORT = 8001
"""Triton's gRPC port."""

Yields = Literal["delta", "cumulative"]

RESERVED_PARAMS = frozenset(
    {
        "sequence_id",
        "sequence_start",
        "sequence_end",
        "priority",
        "timeout",
        "headers",
        "binary_data_output",
    }
)
"""Request parameters Triton (and tritonclient) reserve, besides the ``triton_`` prefix."""

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_METADATA_KEY = re.compile(r"^[0-9a-z_.-]+$")


@dataclass(frozen=True, slots=True)
class TritonSettings:
    """What a ``triton-grpc`` profile asks for, checked."""

    target: str
    """``host:port`` (or ``unix:/path``), as grpc takes it."""
    model: str
    model_version: str
    names: TensorNames
    yields: Yields
    decoupled: bool
    credentials: grpc.ChannelCredentials | None
    metadata: tuple[tuple[str, str], ...]


def settings_from(profile: Profile, env: Mapping[str, str]) -> TritonSettings:
    if not profile.url:
        raise ConfigError(
            f"Profile {profile.name!r} (api 'triton-grpc') has no url.",
            hint=f'Add url = "127.0.0.1:{DEFAULT_PORT}" to the profile.',
        )
    if not profile.model:
        raise ConfigError(
            f"Profile {profile.name!r} (api 'triton-grpc') has no model.",
            hint='Add model = "..." (the Triton model name) to the profile.',
        )
    target, grpcs = _target(profile.url, profile.name)
    tls = _option_bool(profile, "tls", None)
    if tls is False and grpcs:
        raise ConfigError(
            f"Profile {profile.name!r}: url {profile.url!r} asks for TLS but tls = false."
        )
    ca_file = _option_str(profile, "ca_file", None)
    credentials: grpc.ChannelCredentials | None = None
    if tls or grpcs or ca_file:
        root: bytes | None = None
        if ca_file:
            path = Path(ca_file).expanduser()
            try:
                root = path.read_bytes()
            except OSError as error:
                raise ConfigError(
                    f"Profile {profile.name!r}: cannot read ca_file {str(path)!r}: "
                    f"{error.strerror or error}."
                ) from None
        credentials = grpc.ssl_channel_credentials(root_certificates=root)
    # Cumulative outputs are compared as bytes (a response may end inside a UTF-8
    # character), so this backend has its own prefix check and no "auto" style.
    yields = yields_option(profile.options, profile.name, styles=("delta", "cumulative"))
    _check_params(profile)
    # Read in the order the options have always been checked (the first mistake wins).
    model_version = _option_str(profile, "model_version", None) or ""
    input_tensor = _option_str(profile, "input_tensor", "text_input") or "text_input"
    output_tensor = _option_str(profile, "output_tensor", "text_output") or "text_output"
    decoupled = _option_bool(profile, "decoupled", True) is not False
    metadata = tuple(_metadata(profile, env))
    names = TensorNames(
        input=input_tensor,
        output=output_tensor,
        stream_param=_option_str(profile, "stream_param", None),
        max_tokens=_option_str(profile, "max_tokens_tensor", None),
    )
    return TritonSettings(
        target=target,
        model=profile.model,
        model_version=model_version,
        names=names,
        yields="cumulative" if yields == "cumulative" else "delta",
        decoupled=decoupled,
        credentials=credentials,
        metadata=metadata,
    )


def _target(url: str, profile: str) -> tuple[str, bool]:
    """(``host:port``, TLS?) from ``host:port``, ``grpc://`` or ``grpcs://`` (or ``unix:``)."""
    url = url.strip()
    if url.startswith("unix:"):
        return url, False
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    scheme = scheme.lower()
    if scheme in ("http", "https"):
        raise ConfigError(
            f"Profile {profile!r}: url {url!r} is an HTTP URL; gRPC takes host:port "
            f"(e.g. 127.0.0.1:{DEFAULT_PORT}) or grpc://host:port.",
            hint='For Triton\'s HTTP port use api = "triton-http".',
        )
    if scheme not in ("", "grpc", "grpcs"):
        raise ConfigError(
            f"Profile {profile!r}: url {url!r} has scheme {scheme!r}; use host:port, "
            "grpc://host:port or grpcs://host:port."
        )
    host = rest.rstrip("/")
    if not host or "/" in host:
        raise ConfigError(
            f"Profile {profile!r}: url {url!r} is not host:port (gRPC takes no path).",
            hint=f'Write url = "127.0.0.1:{DEFAULT_PORT}".',
        )
    bare = host.rsplit("]", 1)[-1]  # an [IPv6] literal has colons of its own
    if ":" not in bare:
        host = f"{host}:{DEFAULT_PORT}"
    return host, scheme == "grpcs"


def _option_str(profile: Profile, key: str, default: str | None) -> str | None:
    value = profile.options.get(key, default)
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and key == "model_version":
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(
            f"Profile {profile.name!r}: {key} must be a non-empty string, not {value!r}."
        )
    return value.strip()


def _option_bool(profile: Profile, key: str, default: bool | None) -> bool | None:
    value = profile.options.get(key, default)
    if value is not None and not isinstance(value, bool):
        raise ConfigError(f"Profile {profile.name!r}: {key} must be true or false, not {value!r}.")
    return value


def _expand(value: str, env: Mapping[str, str], profile: str, key: str) -> str:
    def sub(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in env:
            raise ConfigError(
                f"Profile {profile!r}: metadata {key!r} reads the environment variable "
                f"{name}, which is not set.",
                hint=f"export {name}=... before starting tide.",
            )
        return env[name]

    return _ENV_REF.sub(sub, value)


def _metadata(profile: Profile, env: Mapping[str, str]) -> list[tuple[str, str]]:
    """gRPC metadata: profile ``headers``, then ``metadata`` (``${NAME}`` expanded), then
    ``authorization: Bearer <key>`` from ``api_key_env`` unless already given."""
    raw = profile.options.get("metadata", {})
    if not isinstance(raw, Mapping):
        raise ConfigError(
            f"Profile {profile.name!r}: metadata must be a table of header names to values.",
            hint='e.g. metadata = { "x-api-key" = "${MY_API_KEY}" }',
        )
    pairs: dict[str, str] = {}
    for source in (profile.headers, raw):
        for key, value in source.items():
            name = str(key).lower()
            if not _METADATA_KEY.match(name) or name.startswith("grpc-"):
                raise ConfigError(
                    f"Profile {profile.name!r}: {key!r} cannot be a gRPC metadata key.",
                    hint="Use lower-case letters, digits, '-', '_' and '.'; 'grpc-' is reserved.",
                )
            if not isinstance(value, str):
                raise ConfigError(
                    f"Profile {profile.name!r}: metadata {key!r} must be a string, not {value!r}."
                )
            pairs[name] = _expand(value, env, profile.name, name)
            if pairs[name] != value:  # filled from the environment: treat it as a secret
                register_secret(pairs[name])
    key = profile.resolve_api_key(env)
    if key:
        register_secret(key)
        if "authorization" not in pairs:
            pairs["authorization"] = f"Bearer {key}"
    return list(pairs.items())


def _check_params(profile: Profile) -> None:
    for key, value in profile.params.items():
        if key.startswith("triton_") or key in RESERVED_PARAMS:
            raise ConfigError(
                f"Profile {profile.name!r}: params key {key!r} is reserved by Triton "
                "(keys starting with 'triton_' and "
                f"{', '.join(sorted(RESERVED_PARAMS))}).",
                hint="Remove it from params.",
            )
        if value is None:
            raise ConfigError(f"Profile {profile.name!r}: params key {key!r} has no value.")
